// The usual function without the [assembly: LambdaSerializer] line.
using Amazon.Lambda.Core;

namespace NoSerializer
{
    public class Function
    {
        public string FunctionHandler(string input, ILambdaContext context)
        {
            return input;
        }
    }
}
