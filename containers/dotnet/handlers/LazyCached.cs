// A Lazy<Task<string>> started on first use. Lazy keeps the Task it created,
// and a faulted Task stays faulted: after the first failure every invoke
// rethrows the same HttpRequestException, even once the network is there.
using System;
using System.Net.Http;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("lazy_cached")]
    public sealed class LazyCachedHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient();
        private static readonly Lazy<Task<string>> Config =
            new Lazy<Task<string>>(() => Client.GetStringAsync(Target.Url));

        public async Task<string> HandleAsync(string input, LambdaContext context)
        {
            string body = await Config.Value;
            return Target.Result("lazy_cached", 200, body, 1);
        }
    }
}
