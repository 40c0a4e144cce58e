// A static field resolved at type initialisation, first touched inside the
// handler. If the lookup fails, the runtime marks Backend as failed for good:
// every later access throws the same TypeInitializationException, so the
// function stays broken for the life of the environment, ENI or not.
using System;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    internal static class Backend
    {
        public static readonly Uri Url = new Uri(Target.Url);
        public static readonly IPAddress Ip = Dns.GetHostAddresses(Url.DnsSafeHost)[0];
    }

    [LambdaHandler("static_init")]
    public sealed class StaticInitHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient();

        public async Task<string> HandleAsync(string input, LambdaContext context)
        {
            IPAddress ip = Backend.Ip;
            string host = ip.AddressFamily == AddressFamily.InterNetworkV6 ? "[" + ip + "]" : ip.ToString();
            var byIp = new UriBuilder(Backend.Url) { Host = host };
            using (var request = new HttpRequestMessage(HttpMethod.Get, byIp.Uri))
            {
                // The service is addressed by the cached IP; keep the name in Host.
                request.Headers.Host = Backend.Url.Authority;
                using (HttpResponseMessage response = await Client.SendAsync(request))
                {
                    string body = await response.Content.ReadAsStringAsync();
                    response.EnsureSuccessStatusCode();
                    return Target.Result("static_init", (int)response.StatusCode, body, 1);
                }
            }
        }
    }
}
