// The contract between the runtime loop and a function's code.
//
// Kept to C# 7 and to APIs that exist in both Mono's reference assemblies and
// .NET 8, because the harness compiles these files with Debian's mcs when no
// .NET SDK is installed (see harness/function/dotnet.py).
using System;
using System.Threading.Tasks;

namespace Enirace.Lambda
{
    /// <summary>
    /// A function handler. The runtime creates one instance during init (so the
    /// constructor and the static constructor are init code, as with
    /// Amazon.Lambda.RuntimeSupport) and calls HandleAsync once per invocation,
    /// never concurrently.
    /// </summary>
    public interface ILambdaHandler
    {
        /// <param name="input">The invocation payload, as UTF-8 text (usually JSON).</param>
        /// <returns>The response payload (JSON text), posted as-is. null posts an empty body.</returns>
        Task<string> HandleAsync(string input, LambdaContext context);
    }

    /// <summary>
    /// Gives a handler class the short name used on the command line and in
    /// scenarios, e.g. [LambdaHandler("static_httpclient")].
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
    public sealed class LambdaHandlerAttribute : Attribute
    {
        public LambdaHandlerAttribute(string name)
        {
            Name = name;
        }

        public string Name { get; private set; }
    }

    /// <summary>The per-invocation context, a subset of ILambdaContext.</summary>
    public sealed class LambdaContext
    {
        private readonly long _deadlineMs;

        public LambdaContext(string awsRequestId, long deadlineMs, string invokedFunctionArn, string traceId)
        {
            AwsRequestId = awsRequestId;
            _deadlineMs = deadlineMs;
            InvokedFunctionArn = invokedFunctionArn;
            TraceId = traceId;
        }

        public string AwsRequestId { get; private set; }
        public string InvokedFunctionArn { get; private set; }
        public string TraceId { get; private set; }

        /// <summary>Lambda-Runtime-Client-Context: the caller's client context, JSON, or null.</summary>
        public string ClientContext { get; set; }
        /// <summary>Lambda-Runtime-Cognito-Identity's cognitoIdentityId and cognitoIdentityPoolId, or null.</summary>
        public string CognitoIdentityId { get; set; }
        public string CognitoIdentityPoolId { get; set; }
        /// <summary>Lambda-Runtime-Aws-Tenant-Id, or null.</summary>
        public string TenantId { get; set; }

        /// <summary>Unix epoch milliseconds after which the platform kills the invocation.</summary>
        public long DeadlineMs { get { return _deadlineMs; } }

        /// <summary>Time left until the deadline; negative once it has passed.</summary>
        public TimeSpan RemainingTime
        {
            get
            {
                long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                return TimeSpan.FromMilliseconds(_deadlineMs - now);
            }
        }

        public string FunctionName { get { return Env("AWS_LAMBDA_FUNCTION_NAME"); } }
        public string FunctionVersion { get { return Env("AWS_LAMBDA_FUNCTION_VERSION"); } }
        public string LogGroupName { get { return Env("AWS_LAMBDA_LOG_GROUP_NAME"); } }
        public string LogStreamName { get { return Env("AWS_LAMBDA_LOG_STREAM_NAME"); } }

        public int MemoryLimitInMB
        {
            get
            {
                int mb;
                return int.TryParse(Env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), out mb) ? mb : 128;
            }
        }

        private static string Env(string name)
        {
            return Environment.GetEnvironmentVariable(name) ?? "";
        }
    }
}
