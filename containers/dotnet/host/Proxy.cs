// Implements an interface that is only known at run time (the ILambdaContext
// and ILambdaLogger of the function's own Amazon.Lambda.Core.dll, whatever its
// version) by forwarding every call to an IDispatch.
//
// System.Reflection.DispatchProxy would do this, but mcs cannot compile
// against it here: CoreCLR's System.Reflection.DispatchProxy.dll is built
// against System.Runtime, which Mono's mscorlib-based references do not
// provide (CS0012). Reflection.Emit is reachable through mscorlib, so the
// proxy type is emitted directly.
using System;
using System.Collections.Generic;
using System.Reflection;
using System.Reflection.Emit;

namespace Enirace.Lambda
{
    public interface IDispatch
    {
        /// <summary>Whether a method the interface implements by default (a
        /// default interface method) should be routed here instead.</summary>
        bool Overrides(MethodInfo method);

        object Call(string name, object[] args);
    }

    public static class Proxy
    {
        private static readonly object Gate = new object();
        private static readonly Dictionary<string, Type> Types = new Dictionary<string, Type>();
        private static ModuleBuilder _module;

        public static object Create(Type iface, IDispatch target)
        {
            Type type;
            lock (Gate)
            {
                string key = iface.AssemblyQualifiedName + "|" + target.GetType().FullName;
                if (!Types.TryGetValue(key, out type))
                {
                    type = Emit(iface, target);
                    Types[key] = type;
                }
            }
            return Activator.CreateInstance(type, new object[] { target });
        }

        private static Type Emit(Type iface, IDispatch target)
        {
            if (_module == null)
            {
                var name = new AssemblyName("Enirace.Lambda.Proxies");
                _module = AssemblyBuilder.DefineDynamicAssembly(name, AssemblyBuilderAccess.Run)
                    .DefineDynamicModule(name.Name);
            }
            TypeBuilder tb = _module.DefineType("Proxy" + Types.Count + "_" + iface.Name,
                TypeAttributes.Public | TypeAttributes.Sealed | TypeAttributes.Class, typeof(object));
            FieldBuilder field = tb.DefineField("_target", typeof(IDispatch), FieldAttributes.Private);
            ConstructorBuilder ctor = tb.DefineConstructor(MethodAttributes.Public, CallingConventions.Standard,
                new[] { typeof(IDispatch) });
            ILGenerator il = ctor.GetILGenerator();
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Call, typeof(object).GetConstructor(Type.EmptyTypes));
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldarg_1);
            il.Emit(OpCodes.Stfld, field);
            il.Emit(OpCodes.Ret);

            var all = new List<Type> { iface };
            all.AddRange(iface.GetInterfaces());
            foreach (Type t in all)
            {
                tb.AddInterfaceImplementation(t);
                foreach (MethodInfo m in t.GetMethods(BindingFlags.Public | BindingFlags.Instance))
                {
                    if (m.IsAbstract || target.Overrides(m))
                    {
                        EmitForward(tb, field, m);
                    }
                }
            }
            return tb.CreateTypeInfo().AsType();
        }

        private static void EmitForward(TypeBuilder tb, FieldInfo field, MethodInfo m)
        {
            ParameterInfo[] ps = m.GetParameters();
            var types = new Type[ps.Length];
            for (int i = 0; i < ps.Length; i++)
            {
                types[i] = ps[i].ParameterType;
            }
            MethodBuilder mb = tb.DefineMethod(m.DeclaringType.FullName + "." + m.Name,
                MethodAttributes.Private | MethodAttributes.Virtual | MethodAttributes.Final
                | MethodAttributes.HideBySig | MethodAttributes.NewSlot,
                m.ReturnType, types);
            ILGenerator il = mb.GetILGenerator();
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldfld, field);
            il.Emit(OpCodes.Ldstr, m.Name);
            il.Emit(OpCodes.Ldc_I4, ps.Length);
            il.Emit(OpCodes.Newarr, typeof(object));
            for (int i = 0; i < ps.Length; i++)
            {
                il.Emit(OpCodes.Dup);
                il.Emit(OpCodes.Ldc_I4, i);
                il.Emit(OpCodes.Ldarg, i + 1);
                if (types[i].IsValueType)
                {
                    il.Emit(OpCodes.Box, types[i]);
                }
                il.Emit(OpCodes.Stelem_Ref);
            }
            il.Emit(OpCodes.Callvirt, typeof(IDispatch).GetMethod("Call"));
            if (m.ReturnType == typeof(void))
            {
                il.Emit(OpCodes.Pop);
            }
            else if (m.ReturnType.IsValueType)
            {
                il.Emit(OpCodes.Unbox_Any, m.ReturnType);
            }
            else
            {
                il.Emit(OpCodes.Castclass, m.ReturnType);
            }
            il.Emit(OpCodes.Ret);
            tb.DefineMethodOverride(mb, m);
        }
    }
}
