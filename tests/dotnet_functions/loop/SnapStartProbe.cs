// A SnapStart probe for enirace's loop: two hooks of each kind registered
// during init through the loop's SnapshotRestore. Each hook leaves a file named
// after itself in $SNAP_MARKS (so a Runtime API mock can tell, when
// /restore/next arrives, which hooks have already run), and the handler
// answers with the order the hooks ran in. SNAP_FAIL=before or after makes the
// hook registered first of that kind throw; SNAP_AFTER_SLEEP_MS adds an
// after-restore hook that takes that long.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Probe
{
    [LambdaHandler("snapstart_probe")]
    public sealed class SnapStartProbe : ILambdaHandler
    {
        private static readonly List<string> Calls = new List<string>();

        public SnapStartProbe()
        {
            string fail = Environment.GetEnvironmentVariable("SNAP_FAIL");
            SnapshotRestore.RegisterBeforeSnapshot(() => Hook("before1", fail == "before"));
            // Completes later: the loop must await it before the snapshot.
            SnapshotRestore.RegisterBeforeSnapshot(() => new ValueTask(SlowHookAsync("before2")));
            SnapshotRestore.RegisterAfterRestore(() => Hook("after1", fail == "after"));
            SnapshotRestore.RegisterAfterRestore(() => Hook("after2", false));
            int sleepMs;
            if (int.TryParse(Environment.GetEnvironmentVariable("SNAP_AFTER_SLEEP_MS"), out sleepMs))
            {
                // A restore that overruns Lambda's limit (SnapStartTimeoutException).
                SnapshotRestore.RegisterAfterRestore(() => new ValueTask(Task.Delay(sleepMs)));
            }
        }

        private static async Task SlowHookAsync(string name)
        {
            await Task.Delay(100);
            await Hook(name, false);
        }

        private static ValueTask Hook(string name, bool fail)
        {
            Calls.Add(name);
            string marks = Environment.GetEnvironmentVariable("SNAP_MARKS");
            if (!string.IsNullOrEmpty(marks))
            {
                File.WriteAllText(Path.Combine(marks, name), "");
            }
            if (fail)
            {
                throw new InvalidOperationException(name + " hook failed");
            }
            return default(ValueTask);
        }

        public Task<string> HandleAsync(string input, LambdaContext context)
        {
            return Task.FromResult(string.Join(",", Calls));
        }
    }

    [LambdaHandler("snapstart_ctor_throws")]
    public sealed class SnapStartCtorThrows : ILambdaHandler
    {
        public SnapStartCtorThrows()
        {
            throw new InvalidOperationException("init failed");
        }

        public Task<string> HandleAsync(string input, LambdaContext context)
        {
            return Task.FromResult("");
        }
    }
}
