// What survives a late or swapped ENI: no network at init, a bounded connect
// (SocketsHttpHandler's ConnectTimeout covers the DNS lookup too), pooled
// connections that are recycled, a per-invoke deadline taken from the
// remaining time, retries with backoff on the errors of a network that is not
// there yet, and no failure kept between invokes.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Net.Http;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("resilient")]
    public sealed class ResilientHandler : ILambdaHandler
    {
        private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(5);
        // Leaves time to post the error before the platform's deadline.
        private static readonly TimeSpan SafetyMargin = TimeSpan.FromMilliseconds(300);
        private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(50);
        private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);

        private static readonly HashSet<SocketError> NetworkNotReady = new HashSet<SocketError>
        {
            SocketError.TryAgain,            // EAI_AGAIN: "Resource temporarily unavailable"
            SocketError.HostNotFound,        // resolver up but the name not served yet
            SocketError.NetworkUnreachable,  // no interface or no route yet
            SocketError.NetworkDown,
            SocketError.HostUnreachable,
            SocketError.TimedOut,
            SocketError.ConnectionRefused,   // service side not listening yet
            SocketError.ConnectionReset,     // a pooled connection from before an ENI swap
            SocketError.ConnectionAborted,
            SocketError.AddressNotAvailable, // the local address went away with the old ENI
        };

        // The idle timeout and lifetime retire connections opened over an ENI
        // that has since been swapped; the infinite client timeout leaves the
        // bound to the per-invoke deadline below.
        private static readonly HttpClient Client = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(2),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(20),
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };

        private static readonly Random Jitter = new Random();

        public async Task<string> HandleAsync(string input, LambdaContext context)
        {
            string url = Target.Url;
            TimeSpan budget = context.RemainingTime - SafetyMargin;
            if (budget <= TimeSpan.Zero)
            {
                throw new TimeoutException("resilient: no time left before the invocation deadline");
            }
            using (var overall = new CancellationTokenSource(budget))
            {
                TimeSpan backoff = FirstBackoff;
                Exception last = null;
                for (int attempt = 1; ; attempt++)
                {
                    using (var perAttempt = CancellationTokenSource.CreateLinkedTokenSource(overall.Token))
                    {
                        perAttempt.CancelAfter(AttemptTimeout);
                        try
                        {
                            // GetAsync buffers the body under the same token.
                            using (HttpResponseMessage response = await Client.GetAsync(url, perAttempt.Token))
                            {
                                string body = await response.Content.ReadAsStringAsync();
                                response.EnsureSuccessStatusCode();
                                return Target.Result("resilient", (int)response.StatusCode, body, attempt);
                            }
                        }
                        catch (Exception e) when (overall.IsCancellationRequested)
                        {
                            throw GiveUp(url, budget, attempt, last ?? e);
                        }
                        catch (Exception e) when (IsTransient(e))
                        {
                            last = e;
                        }
                    }
                    TimeSpan delay = backoff + TimeSpan.FromMilliseconds(Jitter.Next(0, 50));
                    Log.Fail(context.AwsRequestId, "resilient: attempt " + attempt + " failed: " + Describe(last)
                        + "; retrying in " + ((int)delay.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + " ms");
                    try
                    {
                        await Task.Delay(delay, overall.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        throw GiveUp(url, budget, attempt, last);
                    }
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                }
            }
        }

        // Called only while the overall deadline has not fired, so a
        // cancellation here is the per-attempt timeout (or ConnectTimeout).
        private static bool IsTransient(Exception e)
        {
            for (Exception x = e; x != null; x = x.InnerException)
            {
                var socket = x as SocketException;
                if (socket != null && NetworkNotReady.Contains(socket.SocketErrorCode))
                {
                    return true;
                }
                if (x is OperationCanceledException || x is TimeoutException)
                {
                    return true;
                }
            }
            return false;
        }

        private static TimeoutException GiveUp(string url, TimeSpan budget, int attempts, Exception last)
        {
            return new TimeoutException(
                "resilient: no answer from " + url + " within "
                + ((int)budget.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + " ms ("
                + attempts.ToString(CultureInfo.InvariantCulture) + " attempts); last error: " + Describe(last),
                last);
        }

        private static string Describe(Exception e)
        {
            var parts = new List<string>();
            for (Exception x = e; x != null; x = x.InnerException)
            {
                parts.Add(x.GetType().Name + ": " + x.Message);
            }
            return string.Join(" -> ", parts);
        }
    }
}
