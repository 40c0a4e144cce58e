// Lambda SnapStart on the runtime side, in RuntimeSupport's order (its
// LambdaBootstrap.RunAsync and SnapstartHelper...): with
// AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, after init the before-snapshot
// hooks run, then GET /runtime/restore/next, which returns in the restored
// environment, then the after-restore hooks, then the invoke loop.
//
// A failing before-snapshot hook (or a failing /restore/next) is an init error
// typed Runtime.BeforeSnapshotError; a failing after-restore hook goes to
// /runtime/restore/error typed Runtime.AfterRestoreError. Either way the
// runtime then returns from its loop and the process exits 0, as RuntimeSupport's does.
using System;
using System.Collections.Concurrent;
using System.Threading.Tasks;

namespace Enirace.Lambda
{
    /// <summary>
    /// The loop's own hook registration for functions built from sources with
    /// this loop (the samples), named and ordered as
    /// Amazon.Lambda.Core.SnapshotRestore: register during init (a constructor
    /// or static constructor); hooks registered later are never run.
    /// </summary>
    public static class SnapshotRestore
    {
        private static readonly ConcurrentQueue<Func<ValueTask>> BeforeSnapshot = new ConcurrentQueue<Func<ValueTask>>();
        private static readonly ConcurrentQueue<Func<ValueTask>> AfterRestore = new ConcurrentQueue<Func<ValueTask>>();

        public static void RegisterBeforeSnapshot(Func<ValueTask> beforeSnapshotAction)
        {
            BeforeSnapshot.Enqueue(beforeSnapshotAction);
        }

        public static void RegisterAfterRestore(Func<ValueTask> afterRestoreAction)
        {
            AfterRestore.Enqueue(afterRestoreAction);
        }

        internal static void CopyTo(RestoreHooks hooks)
        {
            Func<ValueTask> hook;
            while (BeforeSnapshot.TryDequeue(out hook)) hooks.RegisterBeforeSnapshot(hook);
            while (AfterRestore.TryDequeue(out hook)) hooks.RegisterAfterRestore(hook);
        }
    }

    /// <summary>
    /// The hooks collected after init, as SnapshotRestore.Registry keeps them:
    /// before-snapshot hooks on a stack (the last registered runs first),
    /// after-restore hooks in a queue (registration order).
    /// </summary>
    public sealed class RestoreHooks
    {
        private readonly ConcurrentStack<Func<ValueTask>> _beforeSnapshot = new ConcurrentStack<Func<ValueTask>>();
        private readonly ConcurrentQueue<Func<ValueTask>> _afterRestore = new ConcurrentQueue<Func<ValueTask>>();

        public void RegisterBeforeSnapshot(Func<ValueTask> hook)
        {
            _beforeSnapshot.Push(hook);
        }

        public void RegisterAfterRestore(Func<ValueTask> hook)
        {
            _afterRestore.Enqueue(hook);
        }

        public async Task InvokeBeforeSnapshotAsync()
        {
            Func<ValueTask> hook;
            while (_beforeSnapshot.TryPop(out hook))
            {
                await hook();
            }
        }

        public async Task InvokeAfterRestoreAsync()
        {
            Func<ValueTask> hook;
            while (_afterRestore.TryDequeue(out hook))
            {
                await hook();
            }
        }
    }

    public static class SnapStart
    {
        public const string InitTypeVariable = "AWS_LAMBDA_INITIALIZATION_TYPE";
        public const string InitType = "snap-start";
        public const string BeforeSnapshotError = "Runtime.BeforeSnapshotError";
        public const string AfterRestoreError = "Runtime.AfterRestoreError";

        /// <summary>Exact match, as RuntimeSupport compares it.</summary>
        public static bool Enabled
        {
            get { return string.Equals(Environment.GetEnvironmentVariable(InitTypeVariable), InitType, StringComparison.Ordinal); }
        }

        /// <summary>Hooks, snapshot, restore. False when a hook failed and was
        /// reported: the runtime must then stop without polling /next.</summary>
        public static async Task<bool> SnapshotAndRestoreAsync(RuntimeApiClient client, RestoreHooks hooks)
        {
            try
            {
                await hooks.InvokeBeforeSnapshotAsync();
                await client.RestoreNextAsync();
            }
            catch (Exception e)
            {
                LogFailure("Failed to invoke before snapshot hooks: ", e);
                await client.PostInitErrorAsync(ErrorJson.Write(e), BeforeSnapshotError);
                return false;
            }
            try
            {
                await hooks.InvokeAfterRestoreAsync();
            }
            catch (Exception e)
            {
                LogFailure("Failed to invoke after restore callables: ", e);
                await client.PostRestoreErrorAsync(ErrorJson.Write(e), AfterRestoreError);
                return false;
            }
            return true;
        }

        // RuntimeSupport's line: the message already holds the exception, and its
        // log writer appends the exception once more after a line break.
        private static void LogFailure(string what, Exception e)
        {
            Log.Fail(null, what + e + "\n" + e);
        }
    }
}
