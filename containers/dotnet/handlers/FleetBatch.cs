// Fleet sample, mitigation `queue`: an SQS batch handler that reports partial
// failures (ReportBatchItemFailures): each record's call is tried once, within
// a bounded connect and timeout; a record that failed goes back to the queue and
// is retried later, usually on another environment, and dead-lettered after
// max_receive_count. A synchronous event fails as the naive sample does.
using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("fleet_batch")]
    public sealed class FleetBatchHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(1),
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        })
        {
            Timeout = TimeSpan.FromSeconds(2),
        };

        public async Task<string> HandleAsync(string input, LambdaContext context)
        {
            var failures = new List<string>();
            foreach (FleetMessage m in FleetEvents.Messages(input))
            {
                try
                {
                    await FleetEvents.RecordAsync(Client, m.Id, CancellationToken.None);
                }
                catch (Exception e) when (m.SqsMessageId != null
                                          && (e is HttpRequestException || e is OperationCanceledException))
                {
                    Console.Error.WriteLine("fleet_batch: " + m.Id + " failed: " + e.GetType().Name + ": " + e.Message);
                    failures.Add("{\"itemIdentifier\": " + Json.Quote(m.SqsMessageId) + "}");
                }
            }
            return "{\"batchItemFailures\": [" + string.Join(", ", failures) + "]}";
        }
    }
}
