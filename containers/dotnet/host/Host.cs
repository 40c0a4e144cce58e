// Runs a published class-library function (ASSEMBLY::TYPE::METHOD) the way
// Lambda's managed dotnet8 runtime runs it, started as the runtime's bootstrap
// starts Amazon.Lambda.RuntimeSupport:
//
//   dotnet exec --depsfile F.deps.json --runtimeconfig F.runtimeconfig.json enirace-host.dll HANDLER
//   dotnet exec ... enirace-host.dll --check HANDLER   (resolve only: no Runtime API, no user code run)
//
// Nothing of Amazon.Lambda.Core is compiled in: its types are the function's
// own, found by name, and ILambdaContext/ILambdaLogger are implemented at run
// time (Proxy.cs). After an init error, or when the Runtime API fails, the
// exception is left unhandled, as RuntimeSupport does, so the process ends with SIGABRT.
using System;
using System.IO;
using System.Reflection;
using System.Threading.Tasks;

namespace Enirace.Lambda
{
    public static class Host
    {
        public const int ExitCheckFailed = 2;

        public static int Main(string[] args)
        {
            string root = Environment.GetEnvironmentVariable("LAMBDA_TASK_ROOT") ?? Directory.GetCurrentDirectory();
            ProbeTaskRoot(root);
            bool check = args.Length > 0 && args[0] == "--check";
            int at = check ? 1 : 0;
            string handler = args.Length > at ? args[at] : Environment.GetEnvironmentVariable("_HANDLER");
            if (check)
            {
                return Check(handler);
            }
            string endpoint = Environment.GetEnvironmentVariable("AWS_LAMBDA_RUNTIME_API");
            if (string.IsNullOrEmpty(endpoint))
            {
                Console.Error.WriteLine("enirace-host: AWS_LAMBDA_RUNTIME_API is not set; "
                    + "start this runtime from a Lambda Runtime API (enirace's emulator or the RIE)");
                return 2;
            }
            using (var client = new RuntimeApiClient(endpoint))
            {
                RunAsync(client, handler).GetAwaiter().GetResult();
            }
            return 0;
        }

        private static int Check(string handler)
        {
            try
            {
                UserCode.Resolve(handler);
                Console.Out.WriteLine("ok");
                return 0;
            }
            catch (Exception e)
            {
                Console.Out.WriteLine(e.GetType().Name + ": " + e.Message.Replace("\n", " "));
                return ExitCheckFailed;
            }
        }

        private static async Task RunAsync(RuntimeApiClient client, string handler)
        {
            Invoker invoker;
            try
            {
                UserCode code = UserCode.Resolve(handler);
                object serializer = code.CreateSerializer();
                invoker = new Invoker(code, code.CreateInstance(), serializer);
            }
            catch (Exception e)
            {
                Log.Fail(null, e);
                await client.PostInitErrorAsync(ErrorJson.Write(e));
                if (SnapStart.Enabled)
                {
                    Environment.Exit(1);  // RuntimeSupport under SnapStart: exit 1, no abort
                }
                throw;
            }
            if (SnapStart.Enabled && !await SnapStart.SnapshotAndRestoreAsync(client, CoreHooks.Collect()))
            {
                return;  // a hook failed and was reported; RuntimeSupport's RunAsync returns too
            }
            while (true)
            {
                Invocation invocation = await client.NextAsync();
                await InvokeOnceAsync(client, invoker, invocation);
            }
        }

        private static async Task InvokeOnceAsync(RuntimeApiClient client, Invoker invoker, Invocation invocation)
        {
            LambdaContext context = invocation.Context;
            // Every invocation sets it, and one without a trace id clears it,
            // so no handler sees the previous request's trace.
            Environment.SetEnvironmentVariable("_X_AMZN_TRACE_ID", context.TraceId);
            LoggerDispatch.CurrentRequestId = context.AwsRequestId;
            byte[] result;
            try
            {
                result = await invoker.InvokeAsync(invocation.Raw, context);
            }
            catch (Exception e)
            {
                Log.Fail(context.AwsRequestId, e);
                await client.PostErrorAsync(context.AwsRequestId, e.GetType().Name, ErrorJson.Write(e), XRayCause.Write(e));
                return;
            }
            await client.PostResponseAsync(context.AwsRequestId, result);
        }

        /// <summary>The function's assemblies come from its folder: the deps file
        /// names them, and what the host's probing misses is loaded from there.
        /// Amazon.Lambda.Core's static logger is pointed at this runtime's log as
        /// soon as it loads.</summary>
        private static void ProbeTaskRoot(string root)
        {
            AppDomain.CurrentDomain.AssemblyLoad += (s, e) =>
            {
                if (e.LoadedAssembly.GetName().Name == "Amazon.Lambda.Core")
                {
                    LoggerDispatch.Attach(e.LoadedAssembly);
                }
            };
            AppDomain.CurrentDomain.AssemblyResolve += (s, e) =>
            {
                string path = Path.Combine(root, new AssemblyName(e.Name).Name + ".dll");
                return File.Exists(path) ? Assembly.LoadFrom(path) : null;
            };
        }
    }

    /// <summary>The runtime's own log lines: time, request id, level, message.</summary>
    public static class Log
    {
        public static void Fail(string requestId, object message)
        {
            LoggerDispatch.Write(requestId ?? "", "fail", message.ToString());
        }
    }
}
