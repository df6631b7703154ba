import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.ManagementFactory;

/** Writes a heap dump of the running JVM: HPROF via the HotSpot MXBean, or gzip via jcmd. */
final class Dump {
    private Dump() {}

    /** Dumps live objects only (a full GC runs first), as `jmap -dump:live` would. */
    static void heap(String path) throws Exception {
        if (path.endsWith(".gz")) {
            // `jcmd PID GC.heap_dump -gz=1 FILE` writes gzip members chunk by chunk, like production dumps.
            String pid = Long.toString(ProcessHandle.current().pid());
            Process jcmd = new ProcessBuilder("jcmd", pid, "GC.heap_dump", "-gz=1", path)
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            if (jcmd.waitFor() != 0) {
                throw new IllegalStateException("jcmd GC.heap_dump failed for " + path);
            }
            return;
        }
        dumpHeap(path, true);
    }

    /** Dumps every object, garbage included (no GC first), as `jmap -dump:format=b` would. */
    static void heapWithGarbage(String path) throws Exception {
        dumpHeap(path, false);
    }

    private static void dumpHeap(String path, boolean live) throws Exception {
        HotSpotDiagnosticMXBean bean = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        bean.dumpHeap(path, live);
    }
}
