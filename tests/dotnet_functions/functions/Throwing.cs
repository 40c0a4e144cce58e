// A published function whose handler throws an exception named outside ASCII.
using System;
using Amazon.Lambda.Core;

[assembly: LambdaSerializer(typeof(Amazon.Lambda.Serialization.SystemTextJson.DefaultLambdaJsonSerializer))]

namespace Throwing
{
    public sealed class ÄrgerException : Exception
    {
        public ÄrgerException(string message) : base(message) { }
    }

    public class Function
    {
        public string FunctionHandler(string input, ILambdaContext context)
        {
            throw new ÄrgerException("größer als erwartet");
        }
    }
}
