// A stand-in for the Amazon.Lambda.Core package, for tests only (no NuGet is
// reachable here). Public surface as the package documents it, without the
// default interface methods C# 7 (mcs) cannot declare. enirace must never
// depend on this file: it binds the real package's types by name.
using System;
using System.Collections.Generic;
using System.IO;
using System.Collections.Concurrent;
using System.Threading.Tasks;

[assembly: System.Reflection.AssemblyVersion("1.0.0.0")]

namespace Amazon.Lambda.Core
{
    public interface ILambdaLogger
    {
        void Log(string message);
        void LogLine(string message);
    }

    public interface IClientApplication
    {
        string AppPackageName { get; }
        string AppTitle { get; }
        string AppVersionCode { get; }
        string AppVersionName { get; }
        string InstallationId { get; }
    }

    public interface IClientContext
    {
        IDictionary<string, string> Environment { get; }
        IClientApplication Client { get; }
        IDictionary<string, string> Custom { get; }
    }

    public interface ICognitoIdentity
    {
        string IdentityId { get; }
        string IdentityPoolId { get; }
    }

    public interface ILambdaContext
    {
        string AwsRequestId { get; }
        IClientContext ClientContext { get; }
        string FunctionName { get; }
        string FunctionVersion { get; }
        ICognitoIdentity Identity { get; }
        string InvokedFunctionArn { get; }
        ILambdaLogger Logger { get; }
        string LogGroupName { get; }
        string LogStreamName { get; }
        int MemoryLimitInMB { get; }
        TimeSpan RemainingTime { get; }
    }

    public interface ILambdaSerializer
    {
        T Deserialize<T>(Stream requestStream);
        void Serialize<T>(T response, Stream responseStream);
    }

    [AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Method)]
    public sealed class LambdaSerializerAttribute : Attribute
    {
        public LambdaSerializerAttribute(Type serializerType)
        {
            SerializerType = serializerType;
        }

        public Type SerializerType { get; set; }
    }

    public enum LogLevel { Trace = 0, Debug = 1, Information = 2, Warning = 3, Error = 4, Critical = 5 }

#if !CORE_BEFORE_2_5
    // SnapStart's runtime hooks (Core 2.5.0+): queued here, handed to the runtime
    // after init through the internal Copy* methods, which take the registry's
    // Register method (the real package's shape; its callers bind them by name).
    public static class SnapshotRestore
    {
        private static readonly ConcurrentQueue<Func<ValueTask>> BeforeSnapshotRegistry = new ConcurrentQueue<Func<ValueTask>>();
        private static readonly ConcurrentQueue<Func<ValueTask>> AfterRestoreRegistry = new ConcurrentQueue<Func<ValueTask>>();

        internal static void CopyBeforeSnapshotCallbacksToRegistry(Action<Func<ValueTask>> restoreHooksRegistryMethod)
        {
            Func<ValueTask> action;
            while (BeforeSnapshotRegistry.TryDequeue(out action))
            {
                restoreHooksRegistryMethod(action);
            }
        }

        internal static void CopyAfterRestoreCallbacksToRegistry(Action<Func<ValueTask>> restoreHooksRegistryMethod)
        {
            Func<ValueTask> action;
            while (AfterRestoreRegistry.TryDequeue(out action))
            {
                restoreHooksRegistryMethod(action);
            }
        }

        public static void RegisterBeforeSnapshot(Func<ValueTask> beforeSnapshotAction)
        {
            BeforeSnapshotRegistry.Enqueue(beforeSnapshotAction);
        }

        public static void RegisterAfterRestore(Func<ValueTask> afterRestoreAction)
        {
            AfterRestoreRegistry.Enqueue(afterRestoreAction);
        }
    }
#endif

    public static class LambdaLogger
    {
        // The runtime replaces this field (by name) to route the log.
        private static Action<string> _loggingAction = m => Console.WriteLine(m);

        public static void Log(string message)
        {
            _loggingAction(message);
        }
    }
}
