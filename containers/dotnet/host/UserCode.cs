// Loads a class-library function the way Amazon.Lambda.RuntimeSupport does:
// the handler string ASSEMBLY::TYPE::METHOD, the method found by name (or by
// its full signature), checked, the serializer taken from the method's or the
// assembly's LambdaSerializerAttribute. The messages are RuntimeSupport's, so
// a bad handler string reads here as it reads in Lambda's init error.
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading.Tasks;

namespace Enirace.Lambda
{
    /// <summary>The handler string or the function's code cannot be used
    /// (RuntimeSupport's exception of the same name, so the same errorType).</summary>
    public sealed class LambdaValidationException : Exception
    {
        public LambdaValidationException(string message) : base(message) { }
    }

    public sealed class UserCode
    {
        public const string Separator = "::";
        private const string Format = "The valid format is 'ASSEMBLY::TYPE::METHOD'.";
        private const string SerializerAttribute = "Amazon.Lambda.Core.LambdaSerializerAttribute";
        private const string SerializerInterface = "Amazon.Lambda.Core.ILambdaSerializer";
        private const string ContextInterface = "Amazon.Lambda.Core.ILambdaContext";

        public string AssemblyName, TypeName, MethodName;
        public Assembly Assembly;
        public Type Type;
        public MethodInfo Method;
        public Type InputType;    // null: the method takes no input
        public Type ContextType;  // null: the method takes no context
        public Type OutputType;   // null: void or Task
        public bool NeedsSerializer;
        public Attribute Serializer;

        public static UserCode Resolve(string handler)
        {
            var code = new UserCode();
            code.Parse(handler);
            code.Load();
            code.Type = code.Assembly.GetType(code.TypeName);
            if (code.Type == null)
            {
                throw Fail("Unable to load type '{0}' from assembly '{1}'.", code.TypeName, code.AssemblyName);
            }
            code.Method = code.FindMethod();
            code.ValidateMethod();
            code.ValidateType();
            code.Signature();
            code.Serializer = FindSerializer(code.Method) ?? FindSerializer(code.Assembly);
            if (code.NeedsSerializer && code.Serializer == null)
            {
                Type data = code.InputType != null && code.InputType != typeof(Stream) ? code.InputType : code.OutputType;
                string verb = data == code.InputType ? "deserialize input" : "serialize output";
                throw Fail("Could not find the LambdaSerializerAttribute on the assembly '{0}' or method '{1}' while attempting to "
                    + verb + " data of type '{2}'. To use types other than System.IO.Stream as input/output parameters, the assembly "
                    + "or Lambda function should be annotated with {3}.",
                    code.AssemblyName, code.MethodName, data.FullName, SerializerAttribute);
            }
            return code;
        }

        private void Parse(string handler)
        {
            if (string.IsNullOrEmpty(handler))
            {
                throw Fail("Empty lambda function handler. " + Format);
            }
            string[] parts = handler.Split(new[] { Separator }, 3, StringSplitOptions.None);
            if (parts.Length != 3)
            {
                throw Fail("Invalid lambda function handler: '{0}'. " + Format, handler);
            }
            string[] what = { "assembly", "type", "method" };
            for (int i = 0; i < 3; i++)
            {
                parts[i] = parts[i].Trim();
                if (parts[i].Length == 0)
                {
                    throw Fail("Invalid lambda function handler: '{0}', the " + what[i] + " is missing. " + Format, handler);
                }
            }
            AssemblyName = parts[0];
            TypeName = parts[1];
            MethodName = parts[2];
        }

        private void Load()
        {
            var name = new AssemblyName(AssemblyName);
            try
            {
                Assembly = Assembly.Load(name);
            }
            catch (FileNotFoundException e)
            {
                throw Fail("Could not find the specified handler assembly with the file name '{0}'. The assembly should be "
                    + "located in the root of your uploaded .zip file.", e.FileName);
            }
            catch (Exception)
            {
                throw Fail("Unable to load assembly '{0}'.", name);
            }
        }

        private const BindingFlags Flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static;

        private MethodInfo FindMethod()
        {
            for (Type t = Type; t != null; t = t.BaseType)
            {
                MethodInfo byName;
                try
                {
                    byName = t.GetMethod(MethodName, Flags);
                }
                catch (AmbiguousMatchException)
                {
                    throw Overloads(t);
                }
                if (byName != null)
                {
                    return byName;
                }
            }
            for (Type t = Type; t != null; t = t.BaseType)
            {
                foreach (MethodInfo m in t.GetMethods(Flags))
                {
                    if (m.ToString() == MethodName)
                    {
                        return m;
                    }
                }
            }
            throw Fail("Unable to find method '{0}' in type '{1}' from assembly '{2}': Found no methods matching method name '{3}'.",
                MethodName, TypeName, AssemblyName, MethodName);
        }

        private Exception Overloads(Type t)
        {
            var candidates = new List<string>();
            foreach (MethodInfo m in t.GetMethods(Flags))
            {
                if (m.Name == MethodName || m.ToString() == MethodName)
                {
                    candidates.Add(m.ToString());
                }
            }
            return Fail("The method '{0}' in type '{1}' appears to have a number of overloads. To call this method please specify "
                + "a complete method signature. Possible candidates are:\n{2}.", MethodName, t.FullName, string.Join("\n", candidates));
        }

        private void ValidateMethod()
        {
            string m = Method.ToString();
            if (Method.IsAbstract)
            {
                throw Fail("The method '{0}' cannot be used as a Lambda Handler because it is an abstract method. Handler methods "
                    + "cannot be abstract. Please specify a non-abstract handler method.", m);
            }
            if (Method.IsGenericMethod)
            {
                throw Fail("The method '{0}' cannot be used as a Lambda Handler because it is a generic method. Handler methods "
                    + "cannot be generic. Please specify a non-generic handler method.", m);
            }
            if (Method.ReturnType == typeof(void) && Method.IsDefined(typeof(AsyncStateMachineAttribute), false))
            {
                throw Fail("The method '{0}' cannot be used as a Lambda Handler because it is an 'async void' method. Handler "
                    + "methods cannot be 'async void'. Please specify a method that is not 'async void'.", m);
            }
            ParameterInfo[] ps = Method.GetParameters();
            if (ps.Length > 0 && ps[ps.Length - 1].IsDefined(typeof(ParamArrayAttribute), false))
            {
                throw Fail("The method '{0}' cannot be used as a Lambda Handler because it is a 'params' method. Please specify "
                    + "a method that does not use 'params'.", m);
            }
            if ((Method.CallingConvention & CallingConventions.VarArgs) == CallingConventions.VarArgs)
            {
                throw Fail("The method '{0}' cannot be used as a Lambda Handler because it is a 'vararg (variable arguments)' "
                    + "method. Please specify a method that is not 'vararg'.", m);
            }
        }

        private void ValidateType()
        {
            if (Type.IsGenericType)
            {
                throw Fail("The type '{0}' cannot be used as a Lambda Handler type because it is generic. Handler methods cannot "
                    + "be located in generic types. Please specify a handler method in a non-generic type.", Type.FullName);
            }
            if (!Method.IsStatic && Type.IsAbstract)
            {
                throw Fail("The instance method '{0}' cannot be used as a Lambda Handler because its type '{1}' is abstract. "
                    + "Please either use a static handler or specify a type that is not abstract.", Method.ToString(), Type.FullName);
            }
            bool isStruct = Type.IsValueType && !Type.IsPrimitive && !Type.IsEnum;
            if (!Type.IsClass && !isStruct)
            {
                throw Fail("The type '{0}' cannot be used as a handler type since it is not a class or a struct. Please specify "
                    + "a handler method on a class or struct.", Type.FullName);
            }
        }

        private void Signature()
        {
            ParameterInfo[] ps = Method.GetParameters();
            if (ps.Length > 2)
            {
                throw Fail("Method '{0}' of type '{1}' is not supported: the method has more than 2 parameters.", Method.Name, TypeName);
            }
            if (ps.Length == 2)
            {
                if (!IsContext(ps[1].ParameterType))
                {
                    throw Fail("Method '{0}' of type '{1}' is not supported: the method has 2 parameters, but the second parameter "
                        + "is not of type '{2}'.", Method.Name, TypeName, ContextInterface);
                }
                InputType = ps[0].ParameterType;
                ContextType = ps[1].ParameterType;
            }
            else if (ps.Length == 1)
            {
                if (IsContext(ps[0].ParameterType)) ContextType = ps[0].ParameterType;
                else InputType = ps[0].ParameterType;
            }
            Type ret = Method.ReturnType;
            Type taskT = TaskResultType(ret);
            if (taskT != null) OutputType = taskT;
            else if (ret != typeof(void) && !typeof(Task).IsAssignableFrom(ret)) OutputType = ret;
            NeedsSerializer = (InputType != null && InputType != typeof(Stream))
                || (OutputType != null && !typeof(Stream).IsAssignableFrom(OutputType));
        }

        public static Type TaskResultType(Type t)
        {
            for (; t != null; t = t.BaseType)
            {
                if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Task<>)) return t.GetGenericArguments()[0];
            }
            return null;
        }

        private static bool IsContext(Type t)
        {
            return t.FullName == ContextInterface;
        }

        private static Attribute FindSerializer(ICustomAttributeProvider where)
        {
            foreach (object a in where.GetCustomAttributes(true))
            {
                for (Type t = a.GetType(); t != null; t = t.BaseType)
                {
                    if (t.FullName == SerializerAttribute) return (Attribute)a;
                }
            }
            return null;
        }

        /// <summary>The serializer the attribute names, built as RuntimeSupport builds it (this runs user code).</summary>
        public object CreateSerializer()
        {
            if (Serializer == null) return null;
            Type attr = Serializer.GetType();
            PropertyInfo prop = attr.GetProperty("SerializerType");
            if (prop == null) throw Fail("The '{0}' class is invalid: no 'SerializerType' property detected.", attr.FullName);
            var type = prop.GetValue(Serializer, null) as Type;
            if (type == null) throw Fail("The 'SerializerType' property on attribute class '{0}' is not set.", attr.FullName);
            ConstructorInfo ctor = type.GetConstructor(Type.EmptyTypes);
            if (ctor == null) throw Fail("The indicated serializer '{0}' does not define a public zero-parameter constructor.", type.FullName);
            if (type.GetInterface(SerializerInterface) == null)
            {
                throw Fail("The '{0}' class is invalid: it does not implement the 'ILambdaSerializer' interface.", type.FullName);
            }
            return ctor.Invoke(null);
        }

        /// <summary>Init code, as RuntimeSupport runs it: the type initializer for a
        /// static handler, the constructor (and so the type initializer) otherwise.</summary>
        public object CreateInstance()
        {
            RuntimeHelpers.RunClassConstructor(Type.TypeHandle);
            return Method.IsStatic ? null : Activator.CreateInstance(Type);
        }

        public static LambdaValidationException Fail(string format, params object[] args)
        {
            return new LambdaValidationException(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
        }
    }
}
