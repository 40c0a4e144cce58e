// The X-Ray error cause Amazon.Lambda.RuntimeSupport sends with /error in the
// Lambda-Runtime-Function-XRay-Error-Cause header: the working directory, the
// top-level exception (type, message, its own stack frames; inner exceptions
// are not included) and the distinct source files of those frames. Written
// from the document's observable shape, indentation and all, so the header
// carries the same bytes: every part is indented by two spaces per level and
// parts are joined by "," with no line breaks.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;

namespace Enirace.Lambda
{
    public static class XRayCause
    {
        public const string Header = "Lambda-Runtime-Function-XRay-Error-Cause";
        // RuntimeSupport leaves the header out from 1 MiB of UTF-8 on.
        public const int MaxBytes = 1024 * 1024;

        public static string Write(Exception e)
        {
            var paths = new List<string>();
            string exception = ExceptionPart(e, paths);
            var quoted = new List<string>();
            foreach (string p in paths)
            {
                quoted.Add("\"" + Escape(p) + "\"");
            }
            var parts = new List<string>
            {
                Indent(1) + "\"working_directory\": \"" + Escape(Directory.GetCurrentDirectory()) + "\"",
                Indent(1) + "\"exceptions\": [ " + exception + " ]",
                Indent(1) + "\"paths\": " + Wrap(2, "[", "]", quoted),
            };
            return Wrap(1, "{", "}", parts);
        }

        private static string ExceptionPart(Exception e, List<string> paths)
        {
            var parts = new List<string> { Indent(2) + "\"type\": \"" + Escape(e.GetType().Name) + "\"" };
            if (e.Message != null)
            {
                parts.Add(Indent(2) + "\"message\": \"" + Escape(e.Message) + "\"");
            }
            var frames = new List<string>();
            StackFrame[] stack = string.IsNullOrEmpty(e.StackTrace) ? null : new StackTrace(e, true).GetFrames();
            foreach (StackFrame frame in stack ?? new StackFrame[0])
            {
                if (frame != null)
                {
                    frames.Add(FramePart(frame, paths));
                }
            }
            if (frames.Count > 0)
            {
                parts.Add(Indent(2) + "\"stack\": " + Wrap(3, "[", "]", frames));
            }
            return Wrap(2, "{", "}", parts);
        }

        private static string FramePart(StackFrame frame, List<string> paths)
        {
            var parts = new List<string>();
            string file = frame.GetFileName();
            if (file != null)
            {
                parts.Add(Indent(3) + "\"path\": \"" + Escape(file) + "\"");
                if (!paths.Contains(file))
                {
                    paths.Add(file);
                }
            }
            parts.Add(Indent(3) + "\"label\": \"" + Escape(Label(frame)) + "\"");
            if (file != null)
            {
                parts.Add(Indent(3) + "\"line\": " + frame.GetFileLineNumber());
            }
            return Wrap(3, "{", "}", parts);
        }

        private static string Label(StackFrame frame)
        {
            try
            {
                var method = frame.GetMethod();
                if (method != null)
                {
                    return method.DeclaringType == null ? method.Name : method.DeclaringType.Name + "." + method.Name;
                }
            }
            catch (Exception)
            {
                // A trimmed method: RuntimeSupport's placeholder below.
            }
            return "Method has been trimmed";
        }

        private static string Indent(int depth)
        {
            return new string(' ', 2 * depth);
        }

        private static string Wrap(int depth, string open, string close, List<string> parts)
        {
            return Indent(depth) + open + string.Join(",", parts) + Indent(depth) + close;
        }

        // RuntimeSupport's escaping: the JSON short escapes, \uXXXX (upper-case
        // hex) for other control characters and for U+0085/U+2028/U+2029, then
        // the result trimmed.
        private static string Escape(string s)
        {
            var sb = new StringBuilder(s.Length + 8);
            foreach (char c in s)
            {
                switch (c)
                {
                    case '\n': sb.Append("\\n"); break;
                    case '\r': sb.Append("\\r"); break;
                    case '\t': sb.Append("\\t"); break;
                    case '"': sb.Append("\\\""); break;
                    case '\\': sb.Append("\\\\"); break;
                    case '\f': sb.Append("\\f"); break;
                    case '\b': sb.Append("\\b"); break;
                    default:
                        if (c < ' ' || c == '\u0085' || c == '\u2028' || c == '\u2029')
                        {
                            sb.Append("\\u").Append(((int)c).ToString("X4"));
                        }
                        else
                        {
                            sb.Append(c);
                        }
                        break;
                }
            }
            return sb.ToString().Trim();
        }
    }
}
