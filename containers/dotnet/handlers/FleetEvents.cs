// What the fleet samples share (the .NET twin of python's _fleet_events.py): the
// message ids an event carries, whether it came from a synchronous invoke
// ({"id", "sent_ms"}) or from SQS (Records, each body that JSON), and the side
// effect the fleet's account is checked against: GET <service>/record/<id>.
using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    internal struct FleetMessage
    {
        public string SqsMessageId; // null for a synchronous invoke
        public string Id;
    }

    internal static class FleetEvents
    {
        public static List<FleetMessage> Messages(string input)
        {
            var doc = MiniJson.Parse(input) as Dictionary<string, object>;
            if (doc == null)
            {
                throw new FormatException("fleet: the event is not a JSON object");
            }
            var found = new List<FleetMessage>();
            object records;
            if (doc.TryGetValue("Records", out records) && records is List<object>)
            {
                foreach (object r in (List<object>)records)
                {
                    var record = (Dictionary<string, object>)r;
                    var body = (Dictionary<string, object>)MiniJson.Parse((string)record["body"]);
                    found.Add(new FleetMessage { SqsMessageId = (string)record["messageId"], Id = (string)body["id"] });
                }
                return found;
            }
            found.Add(new FleetMessage { SqsMessageId = null, Id = (string)doc["id"] });
            return found;
        }

        public static string RecordUrl(string id)
        {
            return Target.Url.TrimEnd('/') + "/record/" + id;
        }

        /// <summary>GET the message's record URL; a non-2xx status throws.</summary>
        public static async Task RecordAsync(HttpClient client, string id, CancellationToken token)
        {
            using (HttpResponseMessage response = await client.GetAsync(RecordUrl(id), token))
            {
                await response.Content.ReadAsStringAsync();
                response.EnsureSuccessStatusCode();
            }
        }

        public static string Recorded(string handler, List<string> ids)
        {
            var quoted = new List<string>();
            foreach (string id in ids)
            {
                quoted.Add(Json.Quote(id));
            }
            return "{\"handler\": " + Json.Quote(handler) + ", \"recorded\": [" + string.Join(", ", quoted) + "]}";
        }
    }
}
