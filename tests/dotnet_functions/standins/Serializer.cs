// A stand-in for Amazon.Lambda.Serialization.SystemTextJson, for tests only:
// strings, numbers, booleans and flat POCOs with public properties.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Reflection;
using System.Text;
using Amazon.Lambda.Core;

namespace Amazon.Lambda.Serialization.SystemTextJson
{
    public class JsonSerializerException : Exception
    {
        public JsonSerializerException(string message) : base(message) { }
    }

    public class DefaultLambdaJsonSerializer : ILambdaSerializer
    {
        public T Deserialize<T>(Stream requestStream)
        {
            string text = new StreamReader(requestStream, Encoding.UTF8).ReadToEnd();
            try
            {
                int i = 0;
                return (T)Read(text, ref i, typeof(T));
            }
            catch (Exception e)
            {
                throw new JsonSerializerException("Error converting the Lambda event JSON payload to type "
                    + typeof(T).FullName + ": " + e.Message);
            }
        }

        public void Serialize<T>(T response, Stream responseStream)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(Write(response));
            responseStream.Write(bytes, 0, bytes.Length);
        }

        private static string Write(object v)
        {
            if (v == null) return "null";
            if (v is string) return Quote((string)v);
            if (v is bool) return (bool)v ? "true" : "false";
            if (v is int || v is long || v is double) return Convert.ToString(v, CultureInfo.InvariantCulture);
            var parts = new List<string>();
            foreach (PropertyInfo p in v.GetType().GetProperties())
            {
                parts.Add(Quote(p.Name) + ":" + Write(p.GetValue(v, null)));
            }
            return "{" + string.Join(",", parts) + "}";
        }

        private static string Quote(string s)
        {
            return "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        }

        private static object Read(string s, ref int i, Type type)
        {
            while (char.IsWhiteSpace(s[i])) i++;
            if (s[i] == '"')
            {
                int end = s.IndexOf('"', i + 1);
                string str = s.Substring(i + 1, end - i - 1);
                i = end + 1;
                if (type != typeof(string)) throw new FormatException("The JSON value could not be converted to " + type.FullName + ".");
                return str;
            }
            if (s[i] == '{')
            {
                if (type == typeof(string) || type.IsPrimitive)
                {
                    throw new FormatException("The JSON value could not be converted to " + type.FullName + ".");
                }
                object o = Activator.CreateInstance(type);
                i++;
                while (true)
                {
                    while (char.IsWhiteSpace(s[i]) || s[i] == ',') i++;
                    if (s[i] == '}') { i++; return o; }
                    int end = s.IndexOf('"', i + 1);
                    string key = s.Substring(i + 1, end - i - 1);
                    i = s.IndexOf(':', end) + 1;
                    PropertyInfo p = type.GetProperty(key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
                    object value = Read(s, ref i, p != null ? p.PropertyType : typeof(object));
                    if (p != null) p.SetValue(o, value, null);
                }
            }
            int start = i;
            while (i < s.Length && "truefalsn+-.eE0123456789".IndexOf(s[i]) >= 0) i++;
            string word = s.Substring(start, i - start);
            if (word == "null") return null;
            if (type == typeof(bool)) return word == "true";
            if (type == typeof(string)) throw new FormatException("The JSON value could not be converted to System.String.");
            return Convert.ChangeType(double.Parse(word, CultureInfo.InvariantCulture), type == typeof(object) ? typeof(double) : type,
                CultureInfo.InvariantCulture);
        }
    }
}
