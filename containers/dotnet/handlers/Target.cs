// What every sample calls: the service behind TARGET_URL, by its DNS name.
using System;
using System.Globalization;
using System.Net.Http;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    internal static class Target
    {
        public const string DefaultUrl = "http://svc.internal:8080/";

        // Read on every call, not cached: the URL itself is never the fault.
        public static string Url
        {
            get
            {
                string url = Environment.GetEnvironmentVariable("TARGET_URL");
                return string.IsNullOrEmpty(url) ? DefaultUrl : url;
            }
        }

        /// <summary>GET the URL and return a small JSON result; non-2xx statuses throw.</summary>
        public static async Task<string> FetchAsync(HttpClient client, string handler, string url)
        {
            using (HttpResponseMessage response = await client.GetAsync(url))
            {
                string body = await response.Content.ReadAsStringAsync();
                response.EnsureSuccessStatusCode();
                return Result(handler, (int)response.StatusCode, body, 1);
            }
        }

        public static string Result(string handler, int status, string body, int attempts)
        {
            return "{\"handler\": " + Json.Quote(handler)
                + ", \"status\": " + status.ToString(CultureInfo.InvariantCulture)
                + ", \"attempts\": " + attempts.ToString(CultureInfo.InvariantCulture)
                + ", \"body\": " + Json.Quote(body) + "}";
        }
    }
}
