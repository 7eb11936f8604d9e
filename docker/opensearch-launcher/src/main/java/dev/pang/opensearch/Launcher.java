package dev.pang.opensearch;

/**
 * Entry point: runs one OpenSearch node from jars on the class path.
 *
 * <p>This class deliberately names no OpenSearch or log4j class. The JVM runs the static block
 * below before {@code main}, and {@link Boot} (which pulls in OpenSearch and log4j) is only loaded
 * when {@code main} first calls it, so log4j always sees these properties when it initialises.
 */
public final class Launcher {
    static {
        // The distribution sets these too: OpenSearch shuts log4j down itself (in our shutdown
        // hook), and JMX registration is useless here and slows startup.
        System.setProperty("log4j.shutdownHookEnabled", "false");
        System.setProperty("log4j2.disable.jmx", "true");
    }

    private Launcher() {}

    public static void main(String[] args) throws InterruptedException {
        Boot.main(args);
    }
}
