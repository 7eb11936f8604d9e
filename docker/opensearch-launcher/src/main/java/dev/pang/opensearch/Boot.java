package dev.pang.opensearch;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.logging.log4j.LogManager;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.BindHttpException;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.ingest.common.IngestCommonPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.BindTransportException;
import org.opensearch.transport.Netty4Plugin;

/** Does the work of {@link Launcher}; only loaded once the log4j system properties are set. */
final class Boot {
    private static final String PREFIX = "pang-opensearch: ";

    /** The modules a distribution would load from modules/; here they are on the class path. */
    private static final List<Class<? extends Plugin>> PLUGINS = List.of(
        Netty4Plugin.class,
        CommonAnalysisPlugin.class,
        PainlessPlugin.class,
        ReindexPlugin.class,
        MapperExtrasPlugin.class,
        IngestCommonPlugin.class
    );

    private static final List<String> REQUIRED = List.of("path.home", "http.port", "transport.port");

    private static final Map<String, String> DEFAULTS = Map.of(
        "cluster.name", "pang",
        "node.name", "pang-local",
        "discovery.type", "single-node",
        "network.host", "127.0.0.1",
        // a nearly full developer disk would otherwise make every index read-only
        "cluster.routing.allocation.disk.threshold_enabled", "false",
        "node.portsfile", "true"
    );

    /** Node's constructor that accepts class path plugins is protected. */
    static final class LocalNode extends Node {
        LocalNode(Environment env, Collection<Class<? extends Plugin>> plugins) { super(env, plugins, true); }
    }

    /** A startup problem whose message is already fit for the user. */
    static final class Failure extends Exception {
        Failure(String message) { super(message); }
    }

    private Boot() {}

    static void main(String[] args) throws InterruptedException {
        // LogConfigurator.configure redirects System.err into log4j; our one line must reach the real one.
        PrintStream stderr = System.err;
        boolean logging = false;
        Environment env = null;
        try {
            Settings settings = settings(args);
            checkPortFree(settings, "http");
            checkPortFree(settings, "transport");
            String nodeName = settings.get("node.name");
            Path configDir = Path.of(settings.get("path.home")).toAbsolutePath().resolve("config");
            writeDefaultLogConfig(configDir);

            env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), configDir, () -> nodeName);
            // node.portsfile writes into logs/ at start() and fails if it is missing
            Files.createDirectories(env.logsFile());
            LogConfigurator.registerErrorListener();
            LogConfigurator.setNodeName(nodeName);
            LogConfigurator.configure(env);
            logging = true;

            Node node = new LocalNode(env, PLUGINS);
            CountDownLatch stopped = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(node, stopped), "pang-opensearch-shutdown"));
            node.start();
            // every OpenSearch thread is a daemon: without this wait the JVM would exit right away
            stopped.await();
        } catch (Exception | LinkageError e) {
            stderr.println(PREFIX + describe(e, env));
            if (logging) {
                LogManager.getLogger(Boot.class).error("startup failed", e);
            }
            System.exit(1);
        }
    }

    /** Runs in the shutdown hook: on SIGTERM, and on System.exit after a failed start(). */
    private static void stop(Node node, CountDownLatch stopped) {
        try {
            node.close();
            if (node.awaitClose(30, TimeUnit.SECONDS) == false) {
                LogManager.getLogger(Boot.class).warn("node did not stop within 30 s");
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            LogManager.getLogger(Boot.class).warn("error while stopping the node", e);
        } finally {
            LogManager.shutdown();
            stopped.countDown();
        }
    }

    /** -Ekey=value arguments, as the distribution takes them, over the launcher's defaults. */
    static Settings settings(String[] args) throws Failure {
        Map<String, String> given = new LinkedHashMap<>();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (arg.startsWith("-E") == false || eq < 3) {
                throw new Failure("unexpected argument '" + arg + "' (expected -Ekey=value)");
            }
            given.put(arg.substring(2, eq), arg.substring(eq + 1));
        }
        for (String key : REQUIRED) {
            if (given.getOrDefault(key, "").isEmpty()) {
                throw new Failure("missing required argument -E" + key + "=...");
            }
        }
        DEFAULTS.forEach(given::putIfAbsent);
        Settings.Builder builder = Settings.builder();
        given.forEach((key, value) -> builder.put(key, value));
        return builder.build();
    }

    /**
     * Fails in well under a second instead of the ~6 s that start() takes to reach the HTTP bind.
     * OpenSearch still checks for real (see describe); this only covers the common exact-port case.
     */
    private static void checkPortFree(Settings settings, String layer) throws Failure {
        String port = settings.get(layer + ".port");
        String host = settings.get(layer + ".bind_host",
            settings.get(layer + ".host", settings.get("network.bind_host", settings.get("network.host"))));
        if (port.matches("\\d{1,5}") == false) {
            return; // a range: OpenSearch takes the first free port in it
        }
        try (ServerSocket socket = new ServerSocket()) {
            socket.bind(new InetSocketAddress(InetAddress.getByName(host), Integer.parseInt(port)));
        } catch (BindException e) {
            throw new Failure(layer + " port " + port + " on " + host + " " + bindProblem(e));
        } catch (IOException | RuntimeException e) {
            // e.g. a special value such as _local_ or a list of hosts: leave it to OpenSearch
        }
    }

    private static String bindProblem(BindException e) {
        return String.valueOf(e.getMessage()).startsWith("Address already in use")
            ? "is already in use"
            : "cannot be bound (" + e.getMessage() + ")";
    }

    /** LogConfigurator refuses to start without a log4j2.properties in the config directory. */
    private static void writeDefaultLogConfig(Path configDir) throws IOException {
        Path file = configDir.resolve("log4j2.properties");
        if (Files.exists(file)) {
            return;
        }
        Files.createDirectories(configDir);
        try (InputStream in = Boot.class.getResourceAsStream("log4j2.properties")) {
            Files.copy(in, file);
        }
    }

    /** One line naming the cause; the full trace goes to the log. */
    static String describe(Throwable e, Environment env) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof Failure) {
                return t.getMessage();
            }
            if (t instanceof BindHttpException || t instanceof BindTransportException) {
                String layer = t instanceof BindHttpException ? "http" : "transport";
                Throwable root = rootCause(t);
                if (root instanceof BindException) {
                    return layer + " " + portOnHost(t.getMessage()) + " " + bindProblem((BindException) root);
                }
                return "cannot bind " + layer + ": " + withRootCause(t);
            }
            // NodeEnvironment swallows Lucene's LockObtainFailedException: no cause means "lock held"
            if (t instanceof IllegalStateException && t.getCause() == null && env != null
                && String.valueOf(t.getMessage()).startsWith("failed to obtain node locks")) {
                return "another node is already running on path.home " + env.settings().get("path.home")
                    + " (its data path " + Arrays.toString(env.dataFiles()) + " is locked)";
            }
        }
        return withRootCause(e);
    }

    /** "Failed to bind to 127.0.0.1:9200" becomes "port 9200 on 127.0.0.1". */
    private static String portOnHost(String message) {
        String marker = "Failed to bind to ";
        int at = message.indexOf(marker);
        int colon = message.lastIndexOf(':');
        if (at < 0 || colon < at) {
            return "address (" + message + ")";
        }
        return "port " + message.substring(colon + 1) + " on " + message.substring(at + marker.length(), colon);
    }

    private static Throwable rootCause(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        return root;
    }

    private static String withRootCause(Throwable e) {
        String text = e.getClass().getSimpleName() + ": " + e.getMessage();
        Throwable root = rootCause(e);
        if (root != e) {
            text += " (caused by " + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
        }
        return text.replace('\n', ' ');
    }
}
