// SnapStart's trap: a static HttpClient that opens its keep-alive connection
// at init, with no hooks. Under SnapStart init runs once, before the snapshot,
// so every restored environment starts with that pooled connection. After a
// restore the ENI and its address are new and the NAT and the service have
// forgotten the flow: the first call after the restore goes out on the dead
// connection and fails (a reset or, here, the 2 s HttpClient timeout); the
// failed connection leaves the pool, so the next call connects afresh.
using System;
using System.Net.Http;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("snapstart_pool")]
    public sealed class SnapStartPoolHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(1),
        }) { Timeout = TimeSpan.FromSeconds(2) };

        public SnapStartPoolHandler()
        {
            // Warm the pool during init, as a function priming its client for SnapStart does.
            Target.FetchAsync(Client, "snapstart_pool", Target.Url).GetAwaiter().GetResult();
        }

        public Task<string> HandleAsync(string input, LambdaContext context)
        {
            return Target.FetchAsync(Client, "snapstart_pool", Target.Url);
        }
    }
}
