// Test HTTP server for `leaksift check` and `watch` on the JVM (com.sun.net.httpserver only,
// 127.0.0.1 only).
//
//   java GcServer --mode keep|free --port-file FILE [--kib N]
//
// Every request builds a session record of about N KiB (default 32) on the Java heap: a byte
// array and a list of small objects. `--mode keep` stores each record in a static map forever
// (the classic session-store leak); `--mode free` drops it after answering, so it is garbage for
// the next young collection. GET /gc calls System.gc() (for `check --before-sample`; `check
// --jvm-heap` forces the GC from outside with jcmd). The chosen port is written to FILE
// (atomically) once the server listens.

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

public final class GcServer {
    record Event(long at, int kind, double weight) {}

    record Session(long id, byte[] payload, List<Event> events) {}

    static final Map<Long, Session> SESSIONS = new ConcurrentHashMap<>();
    static final AtomicLong SERVED = new AtomicLong();

    static Session session(long id, int kib) {
        // Half of the size in a byte array, half in objects of ~40 bytes (with the list's slot).
        byte[] payload = new byte[kib * 512];
        for (int i = 0; i < payload.length; i += 64) {
            payload[i] = (byte) (id + i);
        }
        int count = kib * 512 / 40;
        List<Event> events = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            events.add(new Event(id * 1000 + i, i % 3, i / 7.0));
        }
        return new Session(id, payload, events);
    }

    static void answer(com.sun.net.httpserver.HttpExchange exchange, int status, String text)
            throws IOException {
        byte[] body = text.getBytes(StandardCharsets.UTF_8);
        exchange.sendResponseHeaders(status, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    public static void main(String[] args) throws IOException {
        String mode = null;
        String portFile = null;
        int kib = 32;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--mode" -> mode = args[i + 1];
                case "--port-file" -> portFile = args[i + 1];
                case "--kib" -> kib = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (!("keep".equals(mode) || "free".equals(mode)) || portFile == null || kib <= 0) {
            System.err.println("usage: java GcServer --mode keep|free --port-file FILE [--kib N]");
            System.exit(2);
        }
        final boolean keep = "keep".equals(mode);
        final int size = kib;
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/gc", exchange -> {
            System.gc();
            answer(exchange, 200, "collected\n");
        });
        server.createContext("/", exchange -> {
            long id = SERVED.incrementAndGet();
            Session session = session(id, size);
            if (keep) {
                SESSIONS.put(id, session);
            }
            answer(exchange, 200, session.payload().length + " " + SESSIONS.size() + "\n");
        });
        server.start();
        Path port = Path.of(portFile);
        Path tmp = Path.of(portFile + ".tmp");
        Files.writeString(tmp, Integer.toString(server.getAddress().getPort()));
        Files.move(tmp, port, StandardCopyOption.ATOMIC_MOVE);
    }
}
