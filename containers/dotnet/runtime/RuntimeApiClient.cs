// The HTTP side of the Lambda Runtime API (2018-06-01), written from the
// protocol description in research/rie.md section 3.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Enirace.Lambda
{
    /// <summary>
    /// The Runtime API answered with something the runtime cannot continue
    /// after (a 500, an unexpected status, a dropped connection). Like
    /// RuntimeSupport's unhandled exception, it ends the process.
    /// </summary>
    public sealed class RuntimeApiException : Exception
    {
        public RuntimeApiException(string message, Exception inner = null) : base(message, inner) { }
    }

    /// <summary>One event from /runtime/invocation/next.</summary>
    public sealed class Invocation
    {
        public Invocation(byte[] raw, LambdaContext context)
        {
            Raw = raw;
            Body = Encoding.UTF8.GetString(raw);
            Context = context;
        }

        public byte[] Raw { get; private set; }
        public string Body { get; private set; }
        public LambdaContext Context { get; private set; }
    }

    public sealed class RuntimeApiClient : IDisposable
    {
        private const string ErrorContentType = "application/vnd.aws.lambda.error+json";
        // Used when /next carries no deadline: Lambda's longest timeout.
        private static readonly TimeSpan MissingDeadlineBudget = TimeSpan.FromMinutes(15);

        private readonly HttpClient _http;
        private readonly string _base;

        public RuntimeApiClient(string endpoint)
        {
            _base = "http://" + endpoint + "/2018-06-01";
            // The Runtime API is on loopback: a proxy from the environment must
            // never be in the way, and /next may block for as long as the
            // platform likes, so there is no client-side timeout.
            var handler = new SocketsHttpHandler
            {
                UseProxy = false,
                UseCookies = false,
                AllowAutoRedirect = false,
            };
            SendHeadersAsUtf8(handler);
            _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
            _http.DefaultRequestHeaders.TryAddWithoutValidation(
                "User-Agent", "enirace-dotnet/" + Environment.Version.ToString());
        }

        public async Task<Invocation> NextAsync()
        {
            const string path = "/runtime/invocation/next";
            var request = new HttpRequestMessage(HttpMethod.Get, _base + path);
            request.Headers.Accept.ParseAdd("application/json");
            using (HttpResponseMessage response = await SendAsync(request, "GET " + path, HttpCompletionOption.ResponseHeadersRead))
            {
                byte[] body = await ReadBodyAsync(response, "GET " + path);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    throw Unexpected("GET " + path, response, body);
                }
                // HttpHeaders lookups ignore case, as the protocol requires.
                string requestId = Header(response, "Lambda-Runtime-Aws-Request-Id");
                if (string.IsNullOrEmpty(requestId))
                {
                    throw new RuntimeApiException("GET " + path + ": response has no Lambda-Runtime-Aws-Request-Id header");
                }
                var context = new LambdaContext(
                    requestId,
                    DeadlineMs(Header(response, "Lambda-Runtime-Deadline-Ms")),
                    Header(response, "Lambda-Runtime-Invoked-Function-Arn"),
                    Header(response, "Lambda-Runtime-Trace-Id"));
                context.ClientContext = Header(response, "Lambda-Runtime-Client-Context");
                context.TenantId = Header(response, "Lambda-Runtime-Aws-Tenant-Id");
                var identity = MiniJson.Parse(Header(response, "Lambda-Runtime-Cognito-Identity") ?? "") as Dictionary<string, object>;
                if (identity != null)
                {
                    context.CognitoIdentityId = Field(identity, "cognitoIdentityId");
                    context.CognitoIdentityPoolId = Field(identity, "cognitoIdentityPoolId");
                }
                return new Invocation(body, context);
            }
        }

        public Task PostResponseAsync(string requestId, string payload)
        {
            return PostResponseAsync(requestId, Encoding.UTF8.GetBytes(payload ?? ""));
        }

        public Task PostResponseAsync(string requestId, byte[] payload)
        {
            string path = "/runtime/invocation/" + Uri.EscapeDataString(requestId) + "/response";
            return PostAsync(path, payload, "application/json", null, null);
        }

        /// <summary>/error with RuntimeSupport's headers: the error type and,
        /// when under 1 MiB, the X-Ray cause with any line breaks removed.</summary>
        public Task PostErrorAsync(string requestId, string errorType, string errorJson, string xrayCause = null)
        {
            string path = "/runtime/invocation/" + Uri.EscapeDataString(requestId) + "/error";
            if (xrayCause != null && Encoding.UTF8.GetByteCount(xrayCause) >= XRayCause.MaxBytes)
            {
                xrayCause = null;
            }
            return PostAsync(path, Encoding.UTF8.GetBytes(errorJson), ErrorContentType, errorType,
                             xrayCause == null ? null : xrayCause.Replace("\r\n", "").Replace("\n", ""));
        }

        // RuntimeSupport sends no Lambda-Runtime-Function-Error-Type header on
        // init errors (the RIE then records Runtime.Unknown); the type is in the body.
        // A failed before-snapshot hook is the one init error it types
        // (Runtime.BeforeSnapshotError).
        public Task PostInitErrorAsync(string errorJson, string errorType = null)
        {
            return PostAsync("/runtime/init/error", Encoding.UTF8.GetBytes(errorJson), ErrorContentType, errorType, null);
        }

        /// <summary>SnapStart: the snapshot is taken while this request is
        /// pending; it returns in the restored environment. RuntimeSupport
        /// accepts 200 and 204 and treats anything else as it treats /next's.</summary>
        public async Task RestoreNextAsync()
        {
            const string path = "/runtime/restore/next";
            var request = new HttpRequestMessage(HttpMethod.Get, _base + path);
            request.Headers.Accept.ParseAdd("application/json");
            using (HttpResponseMessage response = await SendAsync(request, "GET " + path, HttpCompletionOption.ResponseHeadersRead))
            {
                byte[] body = await ReadBodyAsync(response, "GET " + path);
                if (response.StatusCode != HttpStatusCode.OK && response.StatusCode != HttpStatusCode.NoContent)
                {
                    throw Unexpected("GET " + path, response, body);
                }
            }
        }

        /// <summary>SnapStart: an after-restore hook failed. The body is the
        /// exception as on /init/error, the type header Runtime.AfterRestoreError.</summary>
        public Task PostRestoreErrorAsync(string errorJson, string errorType)
        {
            return PostAsync("/runtime/restore/error", Encoding.UTF8.GetBytes(errorJson), ErrorContentType, errorType, null);
        }

        public void Dispose()
        {
            _http.Dispose();
        }

        private async Task PostAsync(string path, byte[] body, string contentType, string errorType, string xrayCause)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, _base + path);
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
            if (errorType != null)
            {
                request.Headers.TryAddWithoutValidation("Lambda-Runtime-Function-Error-Type", HeaderValue(errorType));
            }
            if (xrayCause != null)
            {
                try
                {
                    request.Headers.Add(XRayCause.Header, HeaderValue(xrayCause));
                }
                catch (FormatException)
                {
                    // As RuntimeSupport: a cause that is no valid header never stops the error report.
                }
            }
            using (HttpResponseMessage response = await SendAsync(request, "POST " + path, HttpCompletionOption.ResponseContentRead))
            {
                if (response.StatusCode != HttpStatusCode.Accepted)
                {
                    throw Unexpected("POST " + path, response, await ReadBodyAsync(response, "POST " + path));
                }
            }
        }

        private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, string what, HttpCompletionOption option)
        {
            try
            {
                return await _http.SendAsync(request, option);
            }
            catch (Exception e)
            {
                throw new RuntimeApiException(what + " failed: " + e.Message, e);
            }
            finally
            {
                request.Dispose();
            }
        }

        private static async Task<byte[]> ReadBodyAsync(HttpResponseMessage response, string what)
        {
            try
            {
                return await response.Content.ReadAsByteArrayAsync();
            }
            catch (Exception e)
            {
                throw new RuntimeApiException(what + ": reading the body failed: " + e.Message, e);
            }
        }

        private static RuntimeApiException Unexpected(string what, HttpResponseMessage response, byte[] body)
        {
            int status = (int)response.StatusCode;
            string reason = status == 500
                ? "Container error. Non-recoverable state. Runtime should exit promptly."
                : "The HTTP status code of the response was not expected (" + status + ").";
            string text = Encoding.UTF8.GetString(body).Trim();
            return new RuntimeApiException(what + ": " + reason + (text.Length > 0 ? " " + text : ""));
        }

        private static string Header(HttpResponseMessage response, string name)
        {
            IEnumerable<string> values;
            if (response.Headers.TryGetValues(name, out values))
            {
                return values.FirstOrDefault();
            }
            return null;
        }

        private static string Field(Dictionary<string, object> d, string key)
        {
            object v;
            return d.TryGetValue(key, out v) ? v as string : null;
        }

        private static long DeadlineMs(string header)
        {
            long ms;
            if (header != null && long.TryParse(header, NumberStyles.Integer, CultureInfo.InvariantCulture, out ms))
            {
                return ms;
            }
            return DateTimeOffset.UtcNow.Add(MissingDeadlineBudget).ToUnixTimeMilliseconds();
        }

        private static bool _utf8Headers;

        // RuntimeSupport sends header values as UTF-8 (its SocketsHttpHandler's
        // RequestHeaderEncodingSelector), so a non-ASCII exception type reaches
        // the platform intact. Mono's reference assemblies, which mcs compiles
        // against, lack that property: it is set through reflection on CoreCLR.
        private static void SendHeadersAsUtf8(SocketsHttpHandler handler)
        {
            PropertyInfo property = typeof(SocketsHttpHandler).GetProperty("RequestHeaderEncodingSelector");
            MethodInfo utf8 = typeof(RuntimeApiClient).GetMethod("Utf8", BindingFlags.NonPublic | BindingFlags.Static);
            if (property == null || utf8 == null)
            {
                return;
            }
            property.SetValue(handler, Delegate.CreateDelegate(property.PropertyType, utf8));
            _utf8Headers = true;
        }

        private static Encoding Utf8(string name, HttpRequestMessage request)
        {
            return Encoding.UTF8;
        }

        // Without UTF-8 headers .NET refuses non-ASCII values outright; '?' is
        // then better than losing the error report.
        private static string HeaderValue(string value)
        {
            if (_utf8Headers)
            {
                return value;
            }
            var sb = new StringBuilder(value.Length);
            foreach (char c in value)
            {
                sb.Append(c >= 0x20 && c < 0x7f ? c : '?');
            }
            return sb.ToString();
        }
    }
}
