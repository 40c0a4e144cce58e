// SnapStart hooks a function registered through its own Amazon.Lambda.Core
// (SnapshotRestore.RegisterBeforeSnapshot / RegisterAfterRestore, Core 2.5.0+).
// Core keeps them in two internal queues and hands them over through its
// internal CopyBeforeSnapshotCallbacksToRegistry / CopyAfterRestoreCallbacksToRegistry,
// which RuntimeSupport calls after init (it is a friend assembly); here they are
// reached by reflection, whatever the Core version, into the loop's RestoreHooks.
using System;
using System.Reflection;
using System.Threading.Tasks;

namespace Enirace.Lambda
{
    public static class CoreHooks
    {
        private const string CoreAssembly = "Amazon.Lambda.Core";
        private const string SnapshotRestoreType = "Amazon.Lambda.Core.SnapshotRestore";

        /// <summary>The hooks registered so far (during init), moved out of Core
        /// as RuntimeSupport moves them: Core's queues are empty afterwards.</summary>
        public static RestoreHooks Collect()
        {
            var hooks = new RestoreHooks();
            Assembly core = FindCore();
            if (core == null)
            {
                return hooks;  // the function never loaded Core and has none: nothing registered
            }
            try
            {
                Type registry = core.GetType(SnapshotRestoreType, true);
                Copy(registry, "CopyBeforeSnapshotCallbacksToRegistry", hooks.RegisterBeforeSnapshot);
                Copy(registry, "CopyAfterRestoreCallbacksToRegistry", hooks.RegisterAfterRestore);
            }
            catch (TypeLoadException e)
            {
                // RuntimeSupport's line for a Core older than SnapshotRestore; init goes on without hooks.
                Log.Fail(null, "Failed to retrieve snapshot hooks from Amazon.Lambda.Core.SnapshotRestore, "
                    + "this can be fixed by updating the version of Amazon.Lambda.Core: " + e);
            }
            return hooks;
        }

        private static void Copy(Type registry, string method, Action<Func<ValueTask>> into)
        {
            MethodInfo copy = registry.GetMethod(method, BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Static);
            if (copy == null)
            {
                throw new TypeLoadException(registry.FullName + " in " + registry.Assembly.FullName + " has no " + method);
            }
            copy.Invoke(null, new object[] { into });
        }

        private static Assembly FindCore()
        {
            foreach (Assembly a in AppDomain.CurrentDomain.GetAssemblies())
            {
                if (a.GetName().Name == CoreAssembly)
                {
                    return a;
                }
            }
            try
            {
                // RuntimeSupport always has Core loaded; a function that has not
                // touched it yet may still ship one (an old one is worth the log line).
                return Assembly.Load(new AssemblyName(CoreAssembly));
            }
            catch (Exception)
            {
                return null;
            }
        }
    }
}
