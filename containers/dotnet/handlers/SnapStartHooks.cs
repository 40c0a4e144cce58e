// snapstart_pool with the runtime hooks SnapStart asks for: the client (and
// with it the pooled connection) is disposed before the snapshot and built
// again after the restore, so the first call after a restore connects from the
// new address. Registered through the loop's SnapshotRestore, which has
// Amazon.Lambda.Core.SnapshotRestore's names and order; a function on the real
// Amazon.Lambda.Core registers the same way (enirace's host collects those).
using System;
using System.Net.Http;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("snapstart_hooks")]
    public sealed class SnapStartHooksHandler : ILambdaHandler
    {
        private HttpClient _client = NewClient();

        public SnapStartHooksHandler()
        {
            Target.FetchAsync(_client, "snapstart_hooks", Target.Url).GetAwaiter().GetResult();
            SnapshotRestore.RegisterBeforeSnapshot(() =>
            {
                _client.Dispose();
                Log.Info(null, "snapstart_hooks: before snapshot: pool closed");
                return default(ValueTask);
            });
            SnapshotRestore.RegisterAfterRestore(() =>
            {
                _client = NewClient();
                Log.Info(null, "snapstart_hooks: after restore: new pool");
                return default(ValueTask);
            });
        }

        private static HttpClient NewClient()
        {
            return new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(1) })
            {
                Timeout = TimeSpan.FromSeconds(2),
            };
        }

        public Task<string> HandleAsync(string input, LambdaContext context)
        {
            return Target.FetchAsync(_client, "snapstart_hooks", Target.Url);
        }
    }
}
