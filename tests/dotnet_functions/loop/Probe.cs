// Handlers for enirace's own loop (plain sources, compiled with the loop) that
// show what the loop hands a handler and what it posts when one throws.
using System;
using System.Threading.Tasks;

namespace Probe
{
    // A type name outside ASCII: its error-type header must arrive as UTF-8.
    public sealed class ÄrgerException : Exception
    {
        public ÄrgerException(string message) : base(message) { }
    }

    [Enirace.Lambda.LambdaHandler("context")]
    public sealed class ContextProbe : Enirace.Lambda.ILambdaHandler
    {
        public Task<string> HandleAsync(string input, Enirace.Lambda.LambdaContext ctx)
        {
            string trace = Environment.GetEnvironmentVariable("_X_AMZN_TRACE_ID");
            return Task.FromResult(Line(trace) + "|" + Line(ctx.ClientContext) + "|" + Line(ctx.CognitoIdentityId)
                                   + "|" + Line(ctx.CognitoIdentityPoolId) + "|" + Line(ctx.TenantId));
        }

        private static string Line(string s)
        {
            return s ?? "<null>";
        }
    }

    [Enirace.Lambda.LambdaHandler("unicode_throw")]
    public sealed class UnicodeThrow : Enirace.Lambda.ILambdaHandler
    {
        public Task<string> HandleAsync(string input, Enirace.Lambda.LambdaContext ctx)
        {
            throw new ÄrgerException("größer \"als\"\nerwartet");
        }
    }
}
