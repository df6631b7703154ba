import java.util.ArrayList;
import java.util.List;

/** A plugin class MatLeaks loads through its own URLClassLoader: a static cache of N byte[1000]. */
public final class Plugin {
    static final List<byte[]> CACHE = new ArrayList<>();

    private Plugin() {}

    public static void init(int n) {
        for (int i = 0; i < n; i++) {
            CACHE.add(new byte[1000]);
        }
    }
}
