// A function in the usual Lambda style, as `dotnet new lambda.EmptyFunction`
// lays it out, with the incident's static HttpClient.
using System;
using System.Net.Http;
using System.Threading.Tasks;
using Amazon.Lambda.Core;

[assembly: LambdaSerializer(typeof(Amazon.Lambda.Serialization.SystemTextJson.DefaultLambdaJsonSerializer))]

namespace MyFunction
{
    public class Function
    {
        private static readonly HttpClient Client = new HttpClient();

        public async Task<string> FunctionHandler(string input, ILambdaContext context)
        {
            string url = Environment.GetEnvironmentVariable("TARGET_URL") ?? "http://svc.internal:8080/";
            context.Logger.LogLine("calling " + url + " for " + input + ", " + (int)context.RemainingTime.TotalMilliseconds + " ms left");
            using (HttpResponseMessage response = await Client.GetAsync(url))
            {
                string body = await response.Content.ReadAsStringAsync();
                response.EnsureSuccessStatusCode();
                return body;
            }
        }
    }
}
