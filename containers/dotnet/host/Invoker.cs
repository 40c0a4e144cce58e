// Calls the user's method for one event: input from the serializer (or the raw
// Stream), the context through a proxy of the function's own ILambdaContext,
// the result awaited when it is a Task and serialized unless it is a Stream.
using System;
using System.IO;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks;

namespace Enirace.Lambda
{
    public sealed class Invoker
    {
        // BindingFlags.DoNotWrapExceptions (.NET Core 2.1+; not in Mono's
        // reference assemblies): the handler's own exception reaches /error
        // unwrapped, as it does through RuntimeSupport's compiled delegate.
        private const BindingFlags DoNotWrap = (BindingFlags)0x02000000;

        private readonly UserCode _code;
        private readonly object _target;
        private readonly object _serializer;

        public Invoker(UserCode code, object target, object serializer)
        {
            _code = code;
            _target = target;
            _serializer = serializer;
        }

        public async Task<byte[]> InvokeAsync(byte[] body, LambdaContext context)
        {
            var args = new object[_code.Method.GetParameters().Length];
            int i = 0;
            if (_code.InputType != null)
            {
                var input = new MemoryStream(body, false);
                args[i++] = _code.InputType == typeof(Stream) ? input : Generic("Deserialize", _code.InputType, input);
            }
            if (_code.ContextType != null)
            {
                args[i] = ContextDispatch.Create(_code.ContextType, context);
            }
            object result = _code.Method.Invoke(_target, DoNotWrap, null, args, null);
            var task = result as Task;
            if (task != null)
            {
                await task;
                result = _code.OutputType != null ? task.GetType().GetProperty("Result").GetValue(task, null) : null;
            }
            if (_code.OutputType == null)
            {
                return new byte[0];
            }
            var output = new MemoryStream();
            var stream = result as Stream;
            if (stream != null)
            {
                stream.CopyTo(output);
            }
            else if (result != null || !typeof(Stream).IsAssignableFrom(_code.OutputType))
            {
                Generic("Serialize", _code.OutputType, result, output);
            }
            return output.ToArray();
        }

        private object Generic(string name, Type type, params object[] args)
        {
            Type iface = _serializer.GetType().GetInterface("Amazon.Lambda.Core.ILambdaSerializer");
            MethodInfo m = iface.GetMethod(name).MakeGenericMethod(type);
            return m.Invoke(_serializer, DoNotWrap, null, args, null);
        }

        public static void Rethrow(Exception e)
        {
            ExceptionDispatchInfo.Capture(e).Throw();
        }
    }
}
