// Hand-written JSON output. System.Text.Json cannot be used: its writer API is
// built on ReadOnlySpan<T>, which Mono's mcs cannot load, and the runtime has
// to compile with mcs when no .NET SDK is installed.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Enirace.Lambda
{
    /// <summary>JSON string quoting, shared by the runtime and the handlers.</summary>
    public static class Json
    {
        /// <summary>A JSON string literal for s, or null for a null reference.</summary>
        public static string Quote(string s)
        {
            if (s == null)
            {
                return "null";
            }
            var sb = new StringBuilder(s.Length + 2);
            sb.Append('"');
            foreach (char c in s)
            {
                switch (c)
                {
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '\b': sb.Append("\\b"); break;
                    case '\f': sb.Append("\\f"); break;
                    default:
                        if (c < 0x20 || c == '\u2028' || c == '\u2029')
                        {
                            sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                        }
                        else
                        {
                            sb.Append(c);
                        }
                        break;
                }
            }
            sb.Append('"');
            return sb.ToString();
        }
    }

    /// <summary>A small JSON reader for the Runtime API's own headers
    /// (client context, Cognito identity): objects become
    /// Dictionary&lt;string, object&gt;, arrays List&lt;object&gt;, numbers double.</summary>
    public static class MiniJson
    {
        /// <summary>The value, or null when the text is not JSON.</summary>
        public static object Parse(string text)
        {
            try
            {
                int i = 0;
                object v = Value(text, ref i);
                Skip(text, ref i);
                return i == text.Length ? v : null;
            }
            catch (FormatException)
            {
                return null;
            }
            catch (IndexOutOfRangeException)
            {
                return null;
            }
        }

        private static void Skip(string s, ref int i)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
        }

        private static object Value(string s, ref int i)
        {
            Skip(s, ref i);
            char c = s[i];
            if (c == '{')
            {
                var d = new Dictionary<string, object>();
                i++;
                Skip(s, ref i);
                if (s[i] == '}') { i++; return d; }
                while (true)
                {
                    Skip(s, ref i);
                    string key = Str(s, ref i);
                    Skip(s, ref i);
                    if (s[i++] != ':') throw new FormatException();
                    d[key] = Value(s, ref i);
                    Skip(s, ref i);
                    if (s[i] == ',') { i++; continue; }
                    if (s[i++] == '}') return d;
                    throw new FormatException();
                }
            }
            if (c == '[')
            {
                var l = new List<object>();
                i++;
                Skip(s, ref i);
                if (s[i] == ']') { i++; return l; }
                while (true)
                {
                    l.Add(Value(s, ref i));
                    Skip(s, ref i);
                    if (s[i] == ',') { i++; continue; }
                    if (s[i++] == ']') return l;
                    throw new FormatException();
                }
            }
            if (c == '"') return Str(s, ref i);
            foreach (string word in new[] { "true", "false", "null" })
            {
                if (string.CompareOrdinal(s, i, word, 0, word.Length) == 0)
                {
                    i += word.Length;
                    return word == "null" ? null : (object)(word == "true");
                }
            }
            int start = i;
            while (i < s.Length && "+-.eE0123456789".IndexOf(s[i]) >= 0) i++;
            return double.Parse(s.Substring(start, i - start), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        private static string Str(string s, ref int i)
        {
            if (s[i++] != '"') throw new FormatException();
            var sb = new StringBuilder();
            while (s[i] != '"')
            {
                char c = s[i++];
                if (c != '\\') { sb.Append(c); continue; }
                char e = s[i++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'u': sb.Append((char)int.Parse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture)); i += 4; break;
                    default: sb.Append(e); break;
                }
            }
            i++;
            return sb.ToString();
        }
    }

    /// <summary>
    /// The error document Amazon.Lambda.RuntimeSupport posts to /error and
    /// /init/error: errorType (short type name), errorMessage, stackTrace (one
    /// trimmed line per element), cause (the inner exception, same shape) and
    /// causes (an AggregateException's inner exceptions); 2-space indent.
    /// </summary>
    public static class ErrorJson
    {
        private const int MaxPayloadBytes = 256 * 1024;
        private const string Truncated =
            "{\"errorMessage\": \"Exception exceeded maximum payload size of 256KB.\"}";

        public static string Write(Exception exception)
        {
            var sb = new StringBuilder();
            Append(sb, exception, 0);
            sb.Append('\n');
            string json = sb.ToString();
            return Encoding.UTF8.GetByteCount(json) > MaxPayloadBytes ? Truncated : json;
        }

        private static void Append(StringBuilder sb, Exception e, int depth)
        {
            string pad = new string(' ', 2 * depth);
            string fieldPad = pad + "  ";
            var fields = new List<string>();
            fields.Add(fieldPad + "\"errorType\": " + Json.Quote(e.GetType().Name));
            fields.Add(fieldPad + "\"errorMessage\": " + Json.Quote(e.Message));

            List<string> frames = StackLines(e);
            if (frames.Count > 0)
            {
                var quoted = new List<string>();
                foreach (string f in frames)
                {
                    quoted.Add(fieldPad + "  " + Json.Quote(f));
                }
                fields.Add(fieldPad + "\"stackTrace\": [\n" + string.Join(",\n", quoted) + "\n" + fieldPad + "]");
            }

            if (e.InnerException != null)
            {
                var inner = new StringBuilder();
                Append(inner, e.InnerException, depth + 1);
                fields.Add(fieldPad + "\"cause\": " + inner.ToString().TrimStart());
            }

            var aggregate = e as AggregateException;
            if (aggregate != null && aggregate.InnerExceptions.Count > 0)
            {
                var items = new List<string>();
                foreach (Exception item in aggregate.InnerExceptions)
                {
                    var one = new StringBuilder();
                    Append(one, item, depth + 2);
                    items.Add(one.ToString());
                }
                fields.Add(fieldPad + "\"causes\": [\n" + string.Join(",\n", items) + "\n" + fieldPad + "]");
            }

            sb.Append(pad).Append("{\n");
            sb.Append(string.Join(",\n", fields));
            sb.Append('\n').Append(pad).Append('}');
        }

        // RuntimeSupport formats new StackTrace(e, true) (with file:line when a
        // pdb is present) and only when the exception was actually thrown.
        private static List<string> StackLines(Exception e)
        {
            var lines = new List<string>();
            if (string.IsNullOrEmpty(e.StackTrace))
            {
                return lines;
            }
            string text = new StackTrace(e, true).ToString();
            foreach (string raw in text.Split('\n'))
            {
                string line = raw.Trim();
                if (line.Length > 0)
                {
                    lines.Add(line);
                }
            }
            return lines;
        }
    }
}
