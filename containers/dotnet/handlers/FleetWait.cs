// Fleet sample, mitigation `wait_for_network`: the init (this handler's
// constructor, which the loop runs before its first /next) waits until the
// service's name resolves, bounded by Lambda's 10 s init limit less a margin,
// then behaves as the naive sample. It costs the cold start's latency: every
// event waiting on that environment waits for the ENI too.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Enirace.Lambda;

namespace Enirace.Handlers
{
    [LambdaHandler("fleet_wait")]
    public sealed class FleetWaitHandler : ILambdaHandler
    {
        private static readonly HttpClient Client = new HttpClient();

        public FleetWaitHandler()
        {
            string limit = Environment.GetEnvironmentVariable("FLEET_WAIT_LIMIT_S");
            double limitS = string.IsNullOrEmpty(limit) ? 9.0 : double.Parse(limit, CultureInfo.InvariantCulture);
            string host = new Uri(Target.Url).DnsSafeHost;
            var clock = Stopwatch.StartNew();
            int waited = 0;
            while (true)
            {
                try
                {
                    Dns.GetHostAddresses(host);
                    break;
                }
                catch (SocketException)
                {
                    if (clock.Elapsed.TotalSeconds >= limitS)
                    {
                        Console.Error.WriteLine("fleet_wait: the network never came; init goes on");
                        break;
                    }
                    waited++;
                    Thread.Sleep(20);
                }
            }
            if (waited > 0)
            {
                Console.Error.WriteLine("fleet_wait: waited " + waited + " times for " + host);
            }
        }

        public async Task<string> HandleAsync(string input, LambdaContext context)
        {
            var done = new List<string>();
            foreach (FleetMessage m in FleetEvents.Messages(input))
            {
                await FleetEvents.RecordAsync(Client, m.Id, CancellationToken.None);
                done.Add(m.Id);
            }
            return FleetEvents.Recorded("fleet_wait", done);
        }
    }
}
