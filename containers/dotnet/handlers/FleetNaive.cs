// Fleet sample, no mitigation: one static HttpClient with default settings (the
// incident's), one call per message, no retry. A cold start that meets a late ENI
// fails its first invocations (HttpRequestException: Resource temporarily
// unavailable); a batch fails whole.
using System.Collections.Generic;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("fleet_naive")]
    public sealed class FleetNaiveHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient();

        public async Task<string> HandleAsync(string input, LambdaContext context)
        {
            var done = new List<string>();
            foreach (FleetMessage m in FleetEvents.Messages(input))
            {
                await FleetEvents.RecordAsync(Client, m.Id, CancellationToken.None);
                done.Add(m.Id);
            }
            return FleetEvents.Recorded("fleet_naive", done);
        }
    }
}
