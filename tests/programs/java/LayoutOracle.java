import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntSupplier;

/**
 * A heap of objects of every layout HotSpot has to compute, for comparing leaksift's per-class
 * counts and shallow sizes with the JVM's own class histogram (crates/leaksift/tests/hprof_oracle.rs).
 *
 * Each class of its own has a distinct instance count (so a count mix-up shows), the fields mix
 * every primitive type and references, subclasses put fields into their superclasses' gaps
 * (JDK 15+ field layout), and there are arrays of every element type with lengths 0..9, Strings,
 * boxes, lambdas (hidden classes), records, enums, inner and anonymous classes and a class
 * loaded twice (by the application loader and by a loader of its own).
 *
 * Usage: java -cp DIR LayoutOracle DIR   (DIR holds the compiled classes)
 * Prints "pid N" then "ready", and exits when a line is read on stdin: nothing is allocated in
 * between, so a class histogram and a heap dump taken meanwhile see the same objects.
 */
public final class LayoutOracle {
    static final List<Object> KEEP = new ArrayList<>();

    static class Bytes { byte a; }
    static class Booleans { boolean a, b, c; }
    static class Shorts { short a; char b; }
    static class IntLong { int a; long b; }
    static class LongInt { long a; int b; }
    static class FloatDouble { float a; double b; byte c; }
    static class Mixed { byte b; short s; char c; int i; long l; float f; double d; boolean z; Object r; }
    static class Refs { Object a, b, c; String d; }
    static class RefsAndBytes { Object a; byte b; Object c; byte d; }
    static class Empty { }

    // Inheritance: subclass fields go into the superclass's gaps.
    static class Base { long l; }                   // 12 + gap 4 + 8
    static class GapFiller extends Base { int i; }  // i in the 4-byte gap after the header
    static class GapBytes extends Base { byte a; byte b; short c; }
    static class Deep extends GapFiller { byte x; Object r; long m; }
    static class BaseByte { byte b; }
    static class AfterByte extends BaseByte { long l; int i; short s; }
    static class EmptySub extends Base { }
    static class RefBase { Object r; }
    static class RefSub extends RefBase { double d; boolean z; }

    record Point(int x, int y) { }
    record Named(String name, long id, byte flag) { }

    enum Colour { RED, GREEN, BLUE }

    final class Inner { int value; }

    static int total;

    public static void main(String[] args) throws Exception {
        many(1, Bytes::new);
        many(2, Booleans::new);
        many(3, Shorts::new);
        many(4, IntLong::new);
        many(5, LongInt::new);
        many(6, FloatDouble::new);
        many(7, Mixed::new);
        many(8, Refs::new);
        many(9, RefsAndBytes::new);
        many(10, Empty::new);
        many(11, Base::new);
        many(12, GapFiller::new);
        many(13, GapBytes::new);
        many(14, Deep::new);
        many(15, BaseByte::new);
        many(16, AfterByte::new);
        many(17, EmptySub::new);
        many(18, RefBase::new);
        many(19, RefSub::new);
        for (int i = 0; i < 20; i++) {
            KEEP.add(new Point(i, -i));
        }
        for (int i = 0; i < 21; i++) {
            KEEP.add(new Named("n" + i, i, (byte) i));
        }
        KEEP.add(Colour.values());
        LayoutOracle outer = new LayoutOracle();
        for (int i = 0; i < 22; i++) {
            KEEP.add(outer.new Inner());
        }
        for (int i = 0; i < 23; i++) {
            final int captured = i;
            KEEP.add(new Object() {
                final long twice = 2L * captured;
            });
        }
        for (int i = 0; i < 24; i++) {
            final int captured = i;
            IntSupplier lambda = () -> captured + total;
            KEEP.add(lambda);
        }
        for (int length = 0; length <= 9; length++) {
            KEEP.add(new boolean[length]);
            KEEP.add(new byte[length]);
            KEEP.add(new char[length]);
            KEEP.add(new short[length]);
            KEEP.add(new int[length]);
            KEEP.add(new float[length]);
            KEEP.add(new long[length]);
            KEEP.add(new double[length]);
            KEEP.add(new Object[length]);
            KEEP.add(new String[length]);
            KEEP.add(new int[length][]);
            KEEP.add(new Bytes[length][length]);
        }
        for (int i = 0; i < 25; i++) {
            KEEP.add("latin1 " + i);
            KEEP.add("\u00e9t\u00e9 \u4e2d " + i);
            KEEP.add(Integer.valueOf(100_000 + i));
            KEEP.add(Long.valueOf(100_000L + i));
            KEEP.add(Double.valueOf(i + 0.5));
            KEEP.add(Character.valueOf((char) (1000 + i)));
        }
        // The same class defined by a second loader: two classes of one name.
        File classes = new File(args[0]);
        URLClassLoader loader = new URLClassLoader(new URL[] {classes.toURI().toURL()}, null);
        Class<?> second = loader.loadClass("LayoutOracle$Mixed");
        java.lang.reflect.Constructor<?> make = second.getDeclaredConstructor();
        make.setAccessible(true);
        for (int i = 0; i < 26; i++) {
            KEEP.add(make.newInstance());
        }
        KEEP.add(loader);

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println("pid " + ProcessHandle.current().pid());
        System.out.println("ready");
        System.out.flush();
        in.readLine();
        System.out.println("kept " + KEEP.size());
    }

    interface Make {
        Object make();
    }

    static void many(int count, Make make) {
        for (int i = 0; i < count; i++) {
            KEEP.add(make.make());
        }
    }
}
