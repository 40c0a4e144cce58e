// static_httpclient's pooled connection, made to survive the NAT forgetting it:
// SocketsHttpHandler drops a pooled connection idle longer than
// PooledConnectionIdleTimeout when it takes it from the pool, measured on the
// monotonic clock, which goes on while the function is frozen. So a timeout
// shorter than the NAT's (350 s on a NAT gateway; here 200 ms) means the first
// call after a long frozen gap opens a fresh connection instead of sending on a
// dead one. A server's keep-alive close is caught the same way when it is
// longer than the pool's timeout.
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
            ConnectTimeout = TimeSpan.FromSeconds(1),
        }) { Timeout = TimeSpan.FromSeconds(2) };

        public Task<string> HandleAsync(string input, LambdaContext context)
        {
            return Target.FetchAsync(Client, "pooled_idle_timeout", Target.Url);
        }
    }
}
