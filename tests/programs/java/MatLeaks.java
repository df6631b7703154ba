import java.lang.ref.SoftReference;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Java leak patterns whose Eclipse MAT answer can be stated exactly (crates/leaksift/tests/hprof_mat.rs).
 * Each keeps N payloads of 1000 bytes in one MatLeaks$Payload[] (compressed oops: 16 + 4 N bytes;
 * a payload is 16 bytes and its byte[] 1016), held a different way.
 * Usage: java MatLeaks OUT.hprof SCENARIO N
 *   frame       a local variable of a sleeping thread's frame ("sleeper")
 *   threadlocal a ThreadLocal value set in a thread-pool thread ("pool-worker")
 *   soft        a static list of SoftReferences: even payloads also strongly held in a static
 *               list, odd ones only softly reachable
 *   classloader Plugin (tests/programs/java/plugin, compiled into the directory the system
 *               property plugin.classes names) loaded by a URLClassLoader that only the context
 *               class loader of a sleeping thread ("plugin-thread") keeps; Plugin.init(N) fills
 *               its static cache with N byte[1000]
 *   grow        a static list of N payloads dumped to OUT, then of 2N dumped to OUT with
 *               "-2.hprof" for ".hprof" (the MXBean writes only .hprof files)
 */
public final class MatLeaks {
    static final class Payload {
        final byte[] data = new byte[1000];
    }

    static final ThreadLocal<Payload[]> LOCAL = new ThreadLocal<>();
    static final List<SoftReference<Payload>> SOFT = new ArrayList<>();
    static final List<Payload> STRONG = new ArrayList<>();
    static final List<Payload> GROWING = new ArrayList<>();

    static Payload[] payloads(int n) {
        Payload[] all = new Payload[n];
        for (int i = 0; i < n; i++) {
            all[i] = new Payload();
        }
        return all;
    }

    public static void main(String[] args) throws Exception {
        String out = args[0];
        int n = Integer.parseInt(args[2]);
        switch (args[1]) {
            case "frame": {
                Object started = new Object();
                Thread sleeper = new Thread(() -> {
                    Payload[] held = payloads(n);
                    synchronized (started) {
                        started.notify();
                    }
                    try {
                        Thread.sleep(1_000_000);
                    } catch (InterruptedException e) {
                        return;
                    }
                    System.out.println(held.length);
                }, "sleeper");
                sleeper.setDaemon(true);
                synchronized (started) {
                    sleeper.start();
                    started.wait();
                }
                // Until the sleeper is in Thread.sleep (not runnable, its frames are final).
                while (sleeper.getState() != Thread.State.TIMED_WAITING) {
                    Thread.sleep(10);
                }
                Dump.heap(out);
                break;
            }
            case "threadlocal": {
                ExecutorService pool = Executors.newFixedThreadPool(1, task -> {
                    Thread t = new Thread(task, "pool-worker");
                    t.setDaemon(true);
                    return t;
                });
                pool.submit(() -> LOCAL.set(payloads(n))).get();
                Dump.heap(out);
                break;
            }
            case "soft": {
                Payload[] all = payloads(n);
                for (int i = 0; i < n; i++) {
                    SOFT.add(new SoftReference<>(all[i]));
                    if (i % 2 == 0) {
                        STRONG.add(all[i]);
                    }
                }
                all = null;
                Dump.heap(out);
                break;
            }
            case "classloader": {
                java.net.URL[] path = {new java.io.File(System.getProperty("plugin.classes")).toURI().toURL()};
                java.net.URLClassLoader loader = new java.net.URLClassLoader(path, null);
                loader.loadClass("Plugin").getMethod("init", int.class).invoke(null, n);
                Thread sleeper = new Thread(() -> {
                    try {
                        Thread.sleep(1_000_000);
                    } catch (InterruptedException e) {
                        return;
                    }
                }, "plugin-thread");
                sleeper.setContextClassLoader(loader);
                sleeper.setDaemon(true);
                sleeper.start();
                loader = null;
                while (sleeper.getState() != Thread.State.TIMED_WAITING) {
                    Thread.sleep(10);
                }
                Dump.heap(out);
                break;
            }
            case "grow": {
                for (int round = 1; round <= 2; round++) {
                    for (int i = 0; i < n; i++) {
                        GROWING.add(new Payload());
                    }
                    Dump.heap(round == 1 ? out : out.replaceFirst("\\.hprof$", "-2.hprof"));
                }
                break;
            }
            default:
                throw new IllegalArgumentException("unknown scenario " + args[1]);
        }
    }
}
