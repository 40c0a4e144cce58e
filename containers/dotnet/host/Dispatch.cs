// What the proxies of the function's ILambdaContext and ILambdaLogger answer.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace Enirace.Lambda
{
    public sealed class ContextDispatch : IDispatch
    {
        private readonly Type _iface;
        private readonly LambdaContext _context;
        private object _logger;

        private ContextDispatch(Type iface, LambdaContext context)
        {
            _iface = iface;
            _context = context;
        }

        public static object Create(Type iface, LambdaContext context)
        {
            return Proxy.Create(iface, new ContextDispatch(iface, context));
        }

        public bool Overrides(MethodInfo m)
        {
            return m.Name == "get_TraceId" || m.Name == "get_TenantId";
        }

        public object Call(string name, object[] args)
        {
            LambdaContext c = _context;
            switch (name)
            {
                case "get_AwsRequestId": return c.AwsRequestId;
                case "get_FunctionName": return c.FunctionName;
                case "get_FunctionVersion": return c.FunctionVersion;
                case "get_InvokedFunctionArn": return c.InvokedFunctionArn;
                case "get_LogGroupName": return c.LogGroupName;
                case "get_LogStreamName": return c.LogStreamName;
                case "get_MemoryLimitInMB": return c.MemoryLimitInMB;
                case "get_RemainingTime": return c.RemainingTime;
                case "get_TraceId": return c.TraceId ?? "";
                case "get_TenantId": return c.TenantId ?? "";
                case "get_Logger": return _logger ?? (_logger = LoggerDispatch.Create(Member("Logger"), c.AwsRequestId));
                case "get_ClientContext": return ClientContextDispatch.Create(Member("ClientContext"), c.ClientContext);
                case "get_Identity": return IdentityDispatch.Create(Member("Identity"), c.CognitoIdentityId, c.CognitoIdentityPoolId);
            }
            return null;
        }

        private Type Member(string property)
        {
            return _iface.GetProperty(property).PropertyType;
        }
    }

    /// <summary>context.Logger and the static LambdaLogger: one line per call
    /// in RuntimeSupport's default text format (time, request id, level, message).</summary>
    public sealed class LoggerDispatch : IDispatch
    {
        private readonly string _requestId;

        private LoggerDispatch(string requestId)
        {
            _requestId = requestId;
        }

        public static object Create(Type iface, string requestId)
        {
            return Proxy.Create(iface, new LoggerDispatch(requestId));
        }

        public bool Overrides(MethodInfo m)
        {
            ParameterInfo[] ps = m.GetParameters();
            return m.Name == "Log" && ps.Length >= 2 && ps[0].ParameterType == typeof(string) && ps[1].ParameterType == typeof(string);
        }

        public object Call(string name, object[] args)
        {
            if (args.Length == 1)
            {
                Write(_requestId, "info", (string)args[0]);
            }
            else if (args.Length >= 2)
            {
                Write(_requestId, Level((string)args[0]), Format((string)args[1], args.Length > 2 ? args[2] as object[] : null));
            }
            return null;
        }

        public static string CurrentRequestId;

        public static void Write(string requestId, string level, string message)
        {
            string time = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
            Console.Out.WriteLine(time + "\t" + (requestId ?? CurrentRequestId ?? "") + "\t" + level + "\t" + message);
        }

        public static string Level(string level)
        {
            switch (level)
            {
                case "Trace": return "trce";
                case "Debug": return "dbug";
                case "Information": return "info";
                case "Warning": return "warn";
                case "Error": return "fail";
                case "Critical": return "crit";
            }
            return level;
        }

        // Message templates: {name} placeholders are filled in order.
        public static string Format(string message, object[] args)
        {
            if (args == null || args.Length == 0 || message == null) return message;
            var sb = new StringBuilder();
            int next = 0;
            for (int i = 0; i < message.Length; i++)
            {
                int close = message[i] == '{' ? message.IndexOf('}', i) : -1;
                if (close > i && next < args.Length)
                {
                    sb.Append(Convert.ToString(args[next++], CultureInfo.InvariantCulture));
                    i = close;
                }
                else
                {
                    sb.Append(message[i]);
                }
            }
            return sb.ToString();
        }

        /// <summary>Points the function's static Amazon.Lambda.Core.LambdaLogger at
        /// this log, through the private fields RuntimeSupport sets.</summary>
        public static void Attach(Assembly core)
        {
            Type logger = core.GetType("Amazon.Lambda.Core.LambdaLogger");
            if (logger == null) return;
            const BindingFlags Static = BindingFlags.NonPublic | BindingFlags.Static;
            FieldInfo plain = logger.GetField("_loggingAction", Static);
            if (plain != null) plain.SetValue(null, new Action<string>(m => Write(null, "info", m)));
            FieldInfo leveled = logger.GetField("_loggingWithLevelAction", Static);
            if (leveled != null)
            {
                leveled.SetValue(null, new Action<string, string, object[]>((l, m, a) => Write(null, Level(l), Format(m, a))));
            }
        }
    }

    public sealed class IdentityDispatch : IDispatch
    {
        private readonly string _id, _pool;

        private IdentityDispatch(string id, string pool)
        {
            _id = id;
            _pool = pool;
        }

        public static object Create(Type iface, string id, string pool)
        {
            return id == null && pool == null ? null : Proxy.Create(iface, new IdentityDispatch(id, pool));
        }

        public bool Overrides(MethodInfo m) { return false; }

        public object Call(string name, object[] args)
        {
            return name == "get_IdentityId" ? _id : name == "get_IdentityPoolId" ? _pool : null;
        }
    }

    /// <summary>The mobile client context (Lambda-Runtime-Client-Context's JSON):
    /// client.{installation_id, app_title, app_version_name, app_version_code,
    /// app_package_name}, custom and env.</summary>
    public sealed class ClientContextDispatch : IDispatch
    {
        private readonly Type _iface;
        private readonly Dictionary<string, object> _doc;

        private ClientContextDispatch(Type iface, Dictionary<string, object> doc)
        {
            _iface = iface;
            _doc = doc;
        }

        public static object Create(Type iface, string json)
        {
            if (string.IsNullOrEmpty(json)) return null;
            var doc = MiniJson.Parse(json) as Dictionary<string, object>;
            return doc == null ? null : Proxy.Create(iface, new ClientContextDispatch(iface, doc));
        }

        public bool Overrides(MethodInfo m) { return false; }

        public object Call(string name, object[] args)
        {
            switch (name)
            {
                case "get_Environment": return Strings(Get(_doc, "env"));
                case "get_Custom": return Strings(Get(_doc, "custom"));
                case "get_Client":
                    var client = Get(_doc, "client") as Dictionary<string, object>;
                    Type t = _iface.GetProperty("Client").PropertyType;
                    return client == null ? null : Proxy.Create(t, new ClientApplicationDispatch(client));
            }
            return null;
        }

        private static object Get(Dictionary<string, object> d, string key)
        {
            object v;
            return d.TryGetValue(key, out v) ? v : null;
        }

        private static IDictionary<string, string> Strings(object o)
        {
            var d = o as Dictionary<string, object>;
            if (d == null) return null;
            var r = new Dictionary<string, string>();
            foreach (var kv in d) r[kv.Key] = kv.Value == null ? null : Convert.ToString(kv.Value, CultureInfo.InvariantCulture);
            return r;
        }

        private sealed class ClientApplicationDispatch : IDispatch
        {
            private readonly Dictionary<string, object> _client;

            public ClientApplicationDispatch(Dictionary<string, object> client)
            {
                _client = client;
            }

            public bool Overrides(MethodInfo m) { return false; }

            public object Call(string name, object[] args)
            {
                string key = null;
                switch (name)
                {
                    case "get_InstallationId": key = "installation_id"; break;
                    case "get_AppTitle": key = "app_title"; break;
                    case "get_AppVersionName": key = "app_version_name"; break;
                    case "get_AppVersionCode": key = "app_version_code"; break;
                    case "get_AppPackageName": key = "app_package_name"; break;
                }
                object v = key == null ? null : Get(_client, key);
                return v == null ? null : Convert.ToString(v, CultureInfo.InvariantCulture);
            }
        }
    }
}
