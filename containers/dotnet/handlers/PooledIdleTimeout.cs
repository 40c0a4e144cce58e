// static_httpclient's pooled connection, made to survive the NAT forgetting it.
// SocketsHttpHandler applies PooledConnectionIdleTimeout only from its scavenging
// timer, and a frozen function runs no timer: after a long frozen gap the overdue
// scavenge races the handler's first request (seen here: the request sometimes
// went out on the dead connection first). PooledConnectionLifetime is checked when
// a connection is taken from the pool, on the monotonic clock, which goes on while
// the function is frozen; so a lifetime shorter than the NAT's idle timeout (350 s
// on a NAT gateway; here 1 s) means the first call after a long frozen gap opens a
// fresh connection instead of sending on a dead one (and resolves the name again,
// so it also follows a service that moved). The idle timeout stays for the pool's
// housekeeping while the function runs.
using System;
using System.Net.Http;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("pooled_idle_timeout")]
    public sealed class PooledIdleTimeoutHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient(new SocketsHttpHandler
        {
            PooledConnectionIdleTimeout = TimeSpan.FromMilliseconds(200),
            PooledConnectionLifetime = TimeSpan.FromSeconds(1),
            ConnectTimeout = TimeSpan.FromSeconds(1),
        }) { Timeout = TimeSpan.FromSeconds(2) };

        public Task<string> HandleAsync(string input, LambdaContext context)
        {
            return Target.FetchAsync(Client, "pooled_idle_timeout", Target.Url);
        }
    }
}
