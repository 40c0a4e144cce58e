// An "orders" Lambda handler in C#, written the way that survives a late or
// swapped ENI:
// - the constructors do not touch the network (a throw there fails the init,
//   and a static field initialised from a failed lookup keeps failing forever);
// - ConnectTimeout bounds the DNS lookup plus the TCP connect, and pooled
//   connections are retired, so one opened over a swapped-out ENI is not reused;
// - each attempt has a deadline taken from the time the invocation has left,
//   and errors of a network that is not there yet are retried with backoff.
//
// enirace compiles this directory together with its small Runtime API loop
// (containers/dotnet/runtime/), which provides ILambdaHandler, LambdaContext,
// [LambdaHandler] and Json. Keep to C# 7: without a .NET SDK, Mono's mcs builds it.
using System;
using System.Globalization;
using System.Net.Http;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace MyCompany.Orders
{
    [LambdaHandler("orders")]
    public sealed class OrdersHandler : ILambdaHandler
    {
        private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(1);
        private static readonly TimeSpan Margin = TimeSpan.FromMilliseconds(250);
        private static readonly TimeSpan MaxBackoff = TimeSpan.FromMilliseconds(400);

        private static readonly HttpClient Http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromMilliseconds(500),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromSeconds(60),
        })
        {
            // The per-attempt deadline below is the bound; HttpClient's own 100 s is not.
            Timeout = Timeout.InfiniteTimeSpan,
        };

        public async Task<string> HandleAsync(string input, LambdaContext context)
        {
            string url = Environment.GetEnvironmentVariable("ORDERS_API_URL") ?? "http://orders.internal/";
            TimeSpan backoff = TimeSpan.FromMilliseconds(50);
            for (int attempt = 1; ; attempt++)
            {
                TimeSpan left = context.RemainingTime - Margin;
                TimeSpan budget = left < AttemptTimeout ? left : AttemptTimeout;
                if (budget <= TimeSpan.Zero)
                {
                    throw new TimeoutException("orders: no time left for another attempt");
                }
                try
                {
                    using (var deadline = new CancellationTokenSource(budget))
                    using (HttpResponseMessage reply = await Http.GetAsync(url, deadline.Token))
                    {
                        reply.EnsureSuccessStatusCode();
                        string body = await reply.Content.ReadAsStringAsync();
                        return "{\"attempts\": " + attempt.ToString(CultureInfo.InvariantCulture)
                            + ", \"orders\": " + Json.Quote(body) + "}";
                    }
                }
                catch (Exception e) when (IsNetworkNotReady(e) && context.RemainingTime - Margin > backoff)
                {
                    Console.Error.WriteLine("orders: attempt " + attempt.ToString(CultureInfo.InvariantCulture)
                        + " failed: " + e.GetType().Name + ": " + e.Message);
                }
                await Task.Delay(backoff);
                backoff = backoff + backoff < MaxBackoff ? backoff + backoff : MaxBackoff;
            }
        }

        // HttpRequestException wraps the SocketException of a failed lookup or
        // connect; OperationCanceledException is our own per-attempt deadline.
        private static bool IsNetworkNotReady(Exception e)
        {
            if (e is OperationCanceledException)
            {
                return true;
            }
            for (Exception inner = e; inner != null; inner = inner.InnerException)
            {
                if (inner is SocketException || inner is HttpRequestException)
                {
                    return true;
                }
            }
            return false;
        }
    }
}
