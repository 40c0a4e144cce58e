// Fleet sample, mitigation `retry`: each message's call is retried inside the
// handler (as the `resilient` sample does): a bounded connect, a per-attempt
// timeout within the remaining time, backoff, retries only on the errors of a
// network that is not there yet. It costs latency while the ENI is late, and a
// call retried after a lost answer is recorded twice (the service saw the first).
using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("fleet_retry")]
    public sealed class FleetRetryHandler : ILambdaHandler
    {
        private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(2);
        private static readonly TimeSpan SafetyMargin = TimeSpan.FromMilliseconds(300);
        private static readonly TimeSpan MaxBackoff = TimeSpan.FromMilliseconds(200);

        // ConnectTimeout covers the DNS lookup too; the lifetime retires connections
        // opened over an ENI that has since gone.
        private static readonly HttpClient Client = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(1),
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };

        private static async Task<int> RecordAsync(string id, LambdaContext context)
        {
            TimeSpan backoff = TimeSpan.FromMilliseconds(50);
            for (int attempt = 1; ; attempt++)
            {
                TimeSpan budget = context.RemainingTime - SafetyMargin;
                using (var perAttempt = new CancellationTokenSource(budget < AttemptTimeout ? budget : AttemptTimeout))
                {
                    try
                    {
                        await FleetEvents.RecordAsync(Client, id, perAttempt.Token);
                        return attempt;
                    }
                    catch (Exception e) when (e is HttpRequestException || e is OperationCanceledException)
                    {
                        Console.Error.WriteLine("fleet_retry: attempt " + attempt + " failed: " + e.GetType().Name
                                                + ": " + e.Message);
                        if (context.RemainingTime - SafetyMargin <= backoff)
                        {
                            throw;
                        }
                    }
                }
                await Task.Delay(backoff);
                backoff = backoff + backoff < MaxBackoff ? backoff + backoff : MaxBackoff;
            }
        }

        public async Task<string> HandleAsync(string input, LambdaContext context)
        {
            var attempts = new List<string>();
            foreach (FleetMessage m in FleetEvents.Messages(input))
            {
                attempts.Add((await RecordAsync(m.Id, context)).ToString());
            }
            return "{\"handler\": \"fleet_retry\", \"attempts\": [" + string.Join(", ", attempts) + "]}";
        }
    }
}
