// One class per handler signature family RuntimeSupport accepts.
using System;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Amazon.Lambda.Core;

[assembly: LambdaSerializer(typeof(Amazon.Lambda.Serialization.SystemTextJson.DefaultLambdaJsonSerializer))]

namespace Signatures
{
    public class Order
    {
        public int Id { get; set; }
        public string Name { get; set; }
    }

    public static class NoArgs
    {
        public static int Calls;

        static NoArgs()
        {
            LambdaLogger.Log("static constructor ran");
        }

        public static void Handle()
        {
            Calls++;
            LambdaLogger.Log("static logger call " + Calls);
        }
    }

    public class OnlyContext
    {
        public Task Handle(ILambdaContext context)
        {
            context.Logger.LogLine("function " + context.FunctionName + " " + context.MemoryLimitInMB + " MB " + context.AwsRequestId);
            return Task.FromResult(0);
        }
    }

    public class Streams
    {
        public Stream Echo(Stream input)
        {
            string text = new StreamReader(input).ReadToEnd();
            return new MemoryStream(Encoding.UTF8.GetBytes("echo:" + text));
        }
    }

    public class Pocos
    {
        public Task<Order> Handle(Order order, ILambdaContext context)
        {
            return Task.FromResult(new Order { Id = order.Id + 1, Name = order.Name.ToUpperInvariant() });
        }
    }

    public class Timing
    {
        public string Remaining(string input, ILambdaContext context)
        {
            double first = context.RemainingTime.TotalMilliseconds;
            Thread.Sleep(300);
            double second = context.RemainingTime.TotalMilliseconds;
            return ((int)first) + " " + ((int)second);
        }
    }

    public class Throws
    {
        public Throws()
        {
            throw new InvalidOperationException("the constructor says no");
        }

        public void Handle()
        {
        }
    }

    public class Overloaded
    {
        public void Handle(string a) { }
        public void Handle(Stream a) { }
    }
}
