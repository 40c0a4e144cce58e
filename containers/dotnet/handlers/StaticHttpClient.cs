// The incident's pattern: one static HttpClient with default settings
// (ConnectTimeout infinite, Timeout 100 s, pooled connections kept forever).
// Its construction touches no network, so init always succeeds; each invoke
// resolves and connects through the shared pool.
using System.Net.Http;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("static_httpclient")]
    public sealed class StaticHttpClientHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient();

        public Task<string> HandleAsync(string input, LambdaContext context)
        {
            return Target.FetchAsync(Client, "static_httpclient", Target.Url);
        }
    }
}
