// Calls the service from the constructor, i.e. during init. When that fails
// the runtime reports an init error and exits; the platform starts a fresh
// runtime on the next invoke, so this one recovers once the ENI is up, at the
// cost of another init.
using System.Net.Http;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("ctor_throws")]
    public sealed class CtorThrowsHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient();
        private readonly string _initBody;

        public CtorThrowsHandler()
        {
            _initBody = Client.GetStringAsync(Target.Url).GetAwaiter().GetResult();
        }

        public Task<string> HandleAsync(string input, LambdaContext context)
        {
            return Task.FromResult(Target.Result("ctor_throws", 200, _initBody, 1));
        }
    }
}
