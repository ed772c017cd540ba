package fr.estafette.searchnode;

import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * Runs one OpenSearch node in this JVM, without a distribution: the HTTP transport (Netty 4) and
 * the common analysis module (French analyzer, elision and ASCII folding filters) are loaded as
 * classpath plugins.
 *
 * <p>Arguments: the node's home directory (data and logs go under it) and the HTTP port. The node
 * listens on 127.0.0.1 only and stops when the JVM receives SIGTERM.
 */
public final class SearchNode {

    private static final List<Class<? extends Plugin>> PLUGINS =
            List.of(Netty4Plugin.class, CommonAnalysisPlugin.class);

    private SearchNode() {
    }

    /** A node that accepts plugins given as classes, which the public constructor does not. */
    private static final class ClasspathPluginNode extends Node {
        ClasspathPluginNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    public static void main(String[] arguments) throws Exception {
        if (arguments.length != 2) {
            System.err.println("usage: SearchNode HOME_DIRECTORY HTTP_PORT");
            System.exit(2);
        }
        Path home = Path.of(arguments[0]).toAbsolutePath();
        int httpPort = Integer.parseInt(arguments[1]);

        Settings settings = Settings.builder()
                .put("cluster.name", "estafette-search")
                .put("node.name", "estafette-search-1")
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("discovery.type", "single-node")
                .put("network.host", "127.0.0.1")
                .put("http.port", httpPort)
                .put("transport.port", httpPort + 100)
                .put("http.type", "netty4")
                .put("transport.type", "netty4")
                // Tests fill the disk of a shared machine: do not turn indices read-only.
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .put("action.auto_create_index", false)
                .build();
        Environment environment =
                InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "estafette-search-1");

        Node node = new ClasspathPluginNode(environment, PLUGINS);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception error) {
                System.err.println("closing the search node failed: " + error);
            } finally {
                stopped.countDown();
            }
        }, "search-node-shutdown"));

        node.start();
        System.out.println("search node started on http://127.0.0.1:" + httpPort);
        stopped.await();
    }
}
