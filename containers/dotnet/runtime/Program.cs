// A small Lambda runtime loop: what Amazon.Lambda.RuntimeSupport does for a
// class-library handler, reduced to the parts that matter for network races.
//
// Usage: dotnet exec --runtimeconfig function.runtimeconfig.json function.dll <handler>
// <handler> is a [LambdaHandler] name (e.g. static_httpclient) or the full or
// short name of a class implementing ILambdaHandler; without an argument the
// _HANDLER environment variable is used.
//
// Ending as Amazon.Lambda.RuntimeSupport ends: after an init error (reported to
// /init/error) or when the Runtime API fails or answers 500/unexpectedly, the
// exception is left unhandled, so CoreCLR aborts the process (SIGABRT; the RIE
// logs "signal: aborted"); under SnapStart an init error exits 1 and a failed
// snapshot hook exits 0 (SnapStart.cs). Exit code 2: usage (no Runtime API address).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading.Tasks;

namespace Enirace.Lambda
{
    /// <summary>The handler name does not match any handler class.</summary>
    public sealed class LambdaValidationException : Exception
    {
        public LambdaValidationException(string message) : base(message) { }
    }

    public static class Program
    {
        public const int ExitUsage = 2;

        public static int Main(string[] args)
        {
            string endpoint = Environment.GetEnvironmentVariable("AWS_LAMBDA_RUNTIME_API");
            if (string.IsNullOrEmpty(endpoint))
            {
                Console.Error.WriteLine("enirace-dotnet: AWS_LAMBDA_RUNTIME_API is not set; "
                    + "start this runtime from a Lambda Runtime API (enirace's emulator or the RIE)");
                return ExitUsage;
            }
            string name = args.Length > 0 ? args[0] : Environment.GetEnvironmentVariable("_HANDLER");
            using (var client = new RuntimeApiClient(endpoint))
            {
                RunAsync(client, name).GetAwaiter().GetResult();
            }
            return 0;
        }

        private static async Task RunAsync(RuntimeApiClient client, string name)
        {
            ILambdaHandler handler;
            try
            {
                handler = CreateHandler(name);
            }
            catch (Exception e)
            {
                Log.Fail(null, e);
                await client.PostInitErrorAsync(ErrorJson.Write(e));
                if (SnapStart.Enabled)
                {
                    // As RuntimeSupport under SnapStart: a plain non-zero exit, no abort.
                    Environment.Exit(1);
                }
                throw;
            }
            if (SnapStart.Enabled)
            {
                var hooks = new RestoreHooks();
                SnapshotRestore.CopyTo(hooks);
                if (!await SnapStart.SnapshotAndRestoreAsync(client, hooks))
                {
                    return;
                }
            }
            while (true)
            {
                // One invocation at a time: a second /next while one is running
                // makes the RIE deliver the same event again.
                Invocation invocation = await client.NextAsync();
                await InvokeOnceAsync(client, handler, invocation);
            }
        }

        private static async Task InvokeOnceAsync(RuntimeApiClient client, ILambdaHandler handler, Invocation invocation)
        {
            LambdaContext context = invocation.Context;
            // Every invocation sets it, and one without a trace id clears it,
            // so no handler sees the previous request's trace.
            Environment.SetEnvironmentVariable("_X_AMZN_TRACE_ID", context.TraceId);
            string result;
            try
            {
                result = await handler.HandleAsync(invocation.Body, context);
            }
            catch (Exception e)
            {
                Log.Fail(context.AwsRequestId, e);
                await client.PostErrorAsync(context.AwsRequestId, e.GetType().Name, ErrorJson.Write(e), XRayCause.Write(e));
                return;
            }
            await client.PostResponseAsync(context.AwsRequestId, result);
        }

        /// <summary>
        /// Runs the handler's init code the way RuntimeSupport does: the static
        /// constructor first (a throw surfaces as TypeInitializationException),
        /// then the instance constructor (a throw surfaces as
        /// TargetInvocationException). Both are reported unchanged, with the
        /// real exception as "cause".
        /// </summary>
        public static ILambdaHandler CreateHandler(string name)
        {
            Type type = FindHandlerType(name);
            RuntimeHelpers.RunClassConstructor(type.TypeHandle);
            return (ILambdaHandler)Activator.CreateInstance(type);
        }

        public static Type FindHandlerType(string name)
        {
            if (string.IsNullOrEmpty(name))
            {
                throw new LambdaValidationException(
                    "No handler given: pass a handler name as the first argument or set _HANDLER. Known handlers: "
                    + string.Join(", ", KnownNames()));
            }
            // Reading attributes does not run the handler's static constructor,
            // so finding the type is not yet init code.
            foreach (Type type in HandlerTypes())
            {
                if (NameOf(type) == name || type.FullName == name || type.Name == name)
                {
                    return type;
                }
            }
            throw new LambdaValidationException(
                "Unable to find handler '" + name + "'. Known handlers: " + string.Join(", ", KnownNames()));
        }

        private static IEnumerable<Type> HandlerTypes()
        {
            foreach (Type type in typeof(Program).Assembly.GetTypes())
            {
                if (typeof(ILambdaHandler).IsAssignableFrom(type) && type.IsClass && !type.IsAbstract)
                {
                    yield return type;
                }
            }
        }

        private static string NameOf(Type type)
        {
            var attribute = (LambdaHandlerAttribute)Attribute.GetCustomAttribute(type, typeof(LambdaHandlerAttribute));
            return attribute != null ? attribute.Name : null;
        }

        private static List<string> KnownNames()
        {
            var names = new List<string>();
            foreach (Type type in HandlerTypes())
            {
                names.Add(NameOf(type) ?? type.FullName);
            }
            names.Sort(StringComparer.Ordinal);
            return names;
        }
    }

    /// <summary>Log lines in Lambda's text format: time, request id, level, message.</summary>
    public static class Log
    {
        public static void Info(string requestId, object message)
        {
            Write(requestId, "info", message);
        }

        public static void Fail(string requestId, object message)
        {
            Write(requestId, "fail", message);
        }

        private static void Write(string requestId, string level, object message)
        {
            string time = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
            Console.Error.WriteLine(time + "\t" + (requestId ?? "") + "\t" + level + "\t" + message);
        }
    }
}
