// A published function registering SnapStart hooks through Amazon.Lambda.Core,
// as AWS's .NET SnapStart guide shows (in the constructor). The same probe as
// loop/SnapStartProbe.cs: marks in $SNAP_MARKS, SNAP_FAIL=before|after makes the
// first-registered hook of that kind throw, the response is the order they ran in.
using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using Amazon.Lambda.Core;

namespace SnapHooks
{
    public class Function
    {
        private static readonly List<string> Calls = new List<string>();

        public Function()
        {
            string fail = Environment.GetEnvironmentVariable("SNAP_FAIL");
            SnapshotRestore.RegisterBeforeSnapshot(() => Hook("before1", fail == "before"));
            SnapshotRestore.RegisterBeforeSnapshot(() => new ValueTask(SlowHookAsync("before2")));
            SnapshotRestore.RegisterAfterRestore(() => Hook("after1", fail == "after"));
            SnapshotRestore.RegisterAfterRestore(() => Hook("after2", false));
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

        public Stream FunctionHandler(Stream input)
        {
            return new MemoryStream(System.Text.Encoding.UTF8.GetBytes(string.Join(",", Calls)));
        }
    }
}
