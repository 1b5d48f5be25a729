/* <lwc/ffi.h>: signatures, struct kinds and the plain (unsafe) call. */
#include "harness.h"

#include <errno.h>
#include <stdbool.h>
#include <lwc/ffi.h>
#include <lwc/mvar.h>
#include <lwc/sched.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- callees ---------------------------------------------------------------------- */

static int8_t neg8(int8_t x) { return (int8_t)-x; }
static uint8_t inv8(uint8_t x) { return (uint8_t)~x; }
static int16_t neg16(int16_t x) { return (int16_t)-x; }
static uint16_t inv16(uint16_t x) { return (uint16_t)~x; }
static int32_t neg32(int32_t x) { return -x; }
static uint32_t inv32(uint32_t x) { return ~x; }
static int64_t neg64(int64_t x) { return -x; }
static uint64_t inv64(uint64_t x) { return ~x; }
static float half_f(float x) { return x / 2; }
static double half_d(double x) { return x / 2; }
static void *next_byte(void *p) { return (char *)p + 1; }

static double mixed(int8_t a, uint16_t b, int32_t c, uint64_t d, float e, double f, const char *g)
{
    return a + b + c + (double)d + e + f + (double)strlen(g);
}

static int calls;
static void count(void) { calls++; }

static int set_errno(int e) { errno = e; return -1; }

struct point { double x, y; };
struct mixed_s { char c; int64_t i; float f; };
struct line { struct point a, b; };
struct big { int64_t w[40]; };

static struct point mid(struct point a, struct point b)
{
    return (struct point){ (a.x + b.x) / 2, (a.y + b.y) / 2 };
}

static struct mixed_s bump(struct mixed_s m)
{
    return (struct mixed_s){ (char)(m.c + 1), m.i * 2, m.f + 0.5f };
}

static double length2(struct line l)
{
    double dx = l.b.x - l.a.x, dy = l.b.y - l.a.y;
    return dx * dx + dy * dy;
}

static struct big fill(int64_t v)
{
    struct big b;
    for (int i = 0; i < 40; i++)
        b.w[i] = v + i;
    return b;
}

/* Call fn(arg) through a one-argument signature; the result lands in a buffer
 * filled with 0xAA, and nothing past the kind's size may change. */
static void call1(lwc_ffi_kind_t k, void (*fn)(void), void *arg, void *out)
{
    lwc_ffi_sig_t *sig;
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, k, 1, &k), LWC_OK);
    unsigned char buf[16];
    memset(buf, 0xAA, sizeof buf);
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, fn, buf, (void *[]){ arg }), LWC_OK);
    size_t n = lwc_ffi_kind_size(k);
    for (size_t i = n; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xAA);
    memcpy(out, buf, n);
    lwc_ffi_sig_free(sig);
}

#define FN(f) ((void (*)(void))(f))

START_TEST(test_every_scalar_kind)
{
    int8_t s8 = 100, r8;
    call1(LWC_FFI_SINT8, FN(neg8), &s8, &r8);
    ck_assert_int_eq(r8, -100);
    uint8_t u8 = 0x0f, ru8;
    call1(LWC_FFI_UINT8, FN(inv8), &u8, &ru8);
    ck_assert_uint_eq(ru8, 0xf0);
    int16_t s16 = 30000, r16;
    call1(LWC_FFI_SINT16, FN(neg16), &s16, &r16);
    ck_assert_int_eq(r16, -30000);
    uint16_t u16 = 0x00ff, ru16;
    call1(LWC_FFI_UINT16, FN(inv16), &u16, &ru16);
    ck_assert_uint_eq(ru16, 0xff00);
    int32_t s32 = 2000000000, r32;
    call1(LWC_FFI_SINT32, FN(neg32), &s32, &r32);
    ck_assert_int_eq(r32, -2000000000);
    uint32_t u32 = 0x0000ffffu, ru32;
    call1(LWC_FFI_UINT32, FN(inv32), &u32, &ru32);
    ck_assert_uint_eq(ru32, 0xffff0000u);
    int64_t s64 = INT64_C(1) << 40, r64;
    call1(LWC_FFI_SINT64, FN(neg64), &s64, &r64);
    ck_assert_int_eq(r64, -(INT64_C(1) << 40));
    uint64_t u64 = 1, ru64;
    call1(LWC_FFI_UINT64, FN(inv64), &u64, &ru64);
    ck_assert_uint_eq(ru64, ~UINT64_C(1));
    float f = 3.0f, rf;
    call1(LWC_FFI_FLOAT, FN(half_f), &f, &rf);
    ck_assert(rf == 1.5f);
    double d = 5.0, rd;
    call1(LWC_FFI_DOUBLE, FN(half_d), &d, &rd);
    ck_assert(rd == 2.5);
    char text[2];
    void *p = text, *rp;
    call1(LWC_FFI_POINTER, FN(next_byte), &p, &rp);
    ck_assert_ptr_eq(rp, text + 1);
}
END_TEST

START_TEST(test_mixed_arguments_and_void)
{
    lwc_ffi_kind_t k[] = { LWC_FFI_SINT8, LWC_FFI_UINT16, LWC_FFI_SINT32, LWC_FFI_UINT64,
                           LWC_FFI_FLOAT, LWC_FFI_DOUBLE, LWC_FFI_POINTER };
    lwc_ffi_sig_t *sig;
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_DOUBLE, 7, k), LWC_OK);
    ck_assert_uint_eq(lwc_ffi_sig_nargs(sig), 7);
    ck_assert_int_eq(lwc_ffi_sig_ret(sig), LWC_FFI_DOUBLE);
    int8_t a = -1;
    uint16_t b = 2;
    int32_t c = -3;
    uint64_t d = 4;
    float e = 0.5f;
    double f = 0.25, r;
    const char *g = "hello";
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(mixed), &r,
                                         (void *[]){ &a, &b, &c, &d, &e, &f, &g }), LWC_OK);
    ck_assert(r == -1 + 2 - 3 + 4 + 0.5 + 0.25 + 5);
    lwc_ffi_sig_free(sig);

    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_VOID, 0, NULL), LWC_OK);
    calls = 0;
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(count), NULL, NULL), LWC_OK);
    ck_assert_int_eq(calls, 1);
    lwc_ffi_sig_free(sig);
}
END_TEST

START_TEST(test_structs_by_value)
{
    lwc_ffi_kind_t point, point2, mix, line, big;
    lwc_ffi_kind_t pf[] = { LWC_FFI_DOUBLE, LWC_FFI_DOUBLE };
    ck_assert_int_eq(lwc_ffi_struct_kind(&point, 2, pf), LWC_OK);
    ck_assert_int_eq(lwc_ffi_struct_kind(&point2, 2, pf), LWC_OK);
    ck_assert_int_eq(point, point2);                   /* the same list, the same kind */
    ck_assert_int_ge(point, LWC_FFI_STRUCT_FIRST);
    ck_assert_uint_eq(lwc_ffi_kind_size(point), sizeof(struct point));
    lwc_ffi_kind_t mf[] = { LWC_FFI_SINT8, LWC_FFI_SINT64, LWC_FFI_FLOAT };
    ck_assert_int_eq(lwc_ffi_struct_kind(&mix, 3, mf), LWC_OK);
    ck_assert_int_ne(mix, point);
    ck_assert_uint_eq(lwc_ffi_kind_size(mix), sizeof(struct mixed_s));
    ck_assert_int_eq(lwc_ffi_struct_kind(&line, 2, (lwc_ffi_kind_t[]){ point, point }), LWC_OK);
    ck_assert_uint_eq(lwc_ffi_kind_size(line), sizeof(struct line));
    lwc_ffi_kind_t bf[40];
    for (int i = 0; i < 40; i++)
        bf[i] = LWC_FFI_SINT64;
    ck_assert_int_eq(lwc_ffi_struct_kind(&big, 40, bf), LWC_OK);
    ck_assert_uint_eq(lwc_ffi_kind_size(big), sizeof(struct big));

    lwc_ffi_sig_t *sig;
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, point, 2, (lwc_ffi_kind_t[]){ point, point }), LWC_OK);
    struct point a = { 1, 2 }, b = { 3, 6 }, m;
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(mid), &m, (void *[]){ &a, &b }), LWC_OK);
    ck_assert(m.x == 2 && m.y == 4);
    lwc_ffi_sig_free(sig);

    ck_assert_int_eq(lwc_ffi_sig_new(&sig, mix, 1, &mix), LWC_OK);
    struct mixed_s in = { 'a', 21, 1.0f };
    struct { struct mixed_s s; unsigned char guard[8]; } out;
    memset(&out, 0xAA, sizeof out);
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(bump), &out.s, (void *[]){ &in }), LWC_OK);
    ck_assert(out.s.c == 'b' && out.s.i == 42 && out.s.f == 1.5f);
    for (size_t i = 0; i < sizeof out.guard; i++)
        ck_assert_uint_eq(out.guard[i], 0xAA);
    lwc_ffi_sig_free(sig);

    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_DOUBLE, 1, &line), LWC_OK);
    struct line l = { { 1, 1 }, { 4, 5 } };
    double len2;
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(length2), &len2, (void *[]){ &l }), LWC_OK);
    ck_assert(len2 == 25);
    lwc_ffi_sig_free(sig);

    ck_assert_int_eq(lwc_ffi_sig_new(&sig, big, 1, (lwc_ffi_kind_t[]){ LWC_FFI_SINT64 }), LWC_OK);
    struct big bg;
    int64_t v = 100;
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(fill), &bg, (void *[]){ &v }), LWC_OK);
    ck_assert_int_eq(bg.w[0], 100);
    ck_assert_int_eq(bg.w[39], 139);
    lwc_ffi_sig_free(sig);
}
END_TEST

START_TEST(test_variadic)
{
    lwc_ffi_kind_t k[] = { LWC_FFI_POINTER, LWC_FFI_UINT64, LWC_FFI_POINTER, LWC_FFI_SINT32,
                           LWC_FFI_DOUBLE, LWC_FFI_POINTER };
    lwc_ffi_sig_t *sig;
    ck_assert_int_eq(lwc_ffi_sig_new_variadic(&sig, LWC_FFI_SINT32, 3, 6, k), LWC_OK);
    char buf[64];
    char *bp = buf;
    uint64_t n = sizeof buf;
    const char *fmt = "%d %.2f %s", *word = "ok";
    int32_t i = -7;
    double d = 2.5;
    int32_t r;
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(snprintf), &r,
                                         (void *[]){ &bp, &n, &fmt, &i, &d, &word }), LWC_OK);
    ck_assert_str_eq(buf, "-7 2.50 ok");
    ck_assert_int_eq(r, (int32_t)strlen(buf));
    lwc_ffi_sig_free(sig);
}
END_TEST

START_TEST(test_errno_is_the_callees)
{
    lwc_ffi_sig_t *sig;
    lwc_ffi_kind_t k = LWC_FFI_SINT32;
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_SINT32, 1, &k), LWC_OK);
    int32_t e = ERANGE, r;
    errno = 0;
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(set_errno), &r, (void *[]){ &e }), LWC_OK);
    ck_assert_int_eq(errno, ERANGE);
    ck_assert_int_eq(r, -1);
    lwc_ffi_sig_free(sig);
}
END_TEST

/* lwc_ffi_call: safe.  read() on an empty pipe, through libffi, on one
 * capability: the other thread runs (and fills the pipe), which it could
 * not if the call kept the capability. */
static int safe_pipe[2];
static atomic_bool reader_in;

static ssize_t announced_read(int fd, void *buf, size_t n)
{
    atomic_store(&reader_in, true);
    return read(fd, buf, n);
}

static void pipe_writer(void *arg)
{
    (void)arg;
    while (!atomic_load(&reader_in))
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    for (int i = 0; i < 50; i++)                    /* the reader stays in its call */
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(write(safe_pipe[1], "xyz", 3), 3);
}

static void safe_reader(void *arg)
{
    (void)arg;
    lwc_ffi_sig_t *sig;
    lwc_ffi_kind_t k[] = { LWC_FFI_SINT32, LWC_FFI_POINTER, LWC_FFI_UINT64 };
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_SINT64, 3, k), LWC_OK);
    lwc_joinable_t *j;
    ck_assert_int_eq(lwc_spawn_joinable(pipe_writer, NULL, &j), LWC_OK);
    char buf[8] = { 0 };
    int32_t fd = safe_pipe[0];
    void *p = buf;
    uint64_t n = sizeof buf;
    int64_t got = 0;
    ck_assert_int_eq(lwc_ffi_call(sig, FN(announced_read), &got, (void *[]){ &fd, &p, &n }),
                     LWC_OK);
    ck_assert_int_eq(got, 3);
    ck_assert_str_eq(buf, "xyz");
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    /* errno is the callee's; bad input is refused before any call */
    lwc_ffi_sig_t *es;
    lwc_ffi_kind_t i32 = LWC_FFI_SINT32;
    ck_assert_int_eq(lwc_ffi_sig_new(&es, LWC_FFI_SINT32, 1, &i32), LWC_OK);
    int32_t e = EDOM, r = 0;
    errno = 0;
    ck_assert_int_eq(lwc_ffi_call(es, FN(set_errno), &r, (void *[]){ &e }), LWC_OK);
    ck_assert_int_eq(errno, EDOM);
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(lwc_ffi_call(NULL, FN(set_errno), &r, (void *[]){ &e }), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_call(es, NULL, &r, (void *[]){ &e }), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_call(es, FN(set_errno), NULL, (void *[]){ &e }), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_call(es, FN(set_errno), &r, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_call_interruptible(es, NULL, &r, (void *[]){ &e }), LWC_EINVAL);
    errno = 0;
    ck_assert_int_eq(lwc_ffi_call_interruptible(es, FN(set_errno), &r, (void *[]){ &e }), LWC_OK);
    ck_assert_int_eq(errno, EDOM);
    lwc_ffi_sig_free(es);
    lwc_ffi_sig_free(sig);
}

START_TEST(test_safe_call_blocks_only_its_thread)
{
    setenv("LWC_CAPS", _i ? "2" : "1", 1);
    ck_assert_int_eq(pipe(safe_pipe), 0);
    atomic_store(&reader_in, false);
    ck_assert_int_eq(lwc_main(safe_reader, NULL), LWC_OK);
    close(safe_pipe[0]);
    close(safe_pipe[1]);
}
END_TEST

START_TEST(test_bad_descriptions)
{
    lwc_ffi_sig_t *sig = (lwc_ffi_sig_t *)1;
    lwc_ffi_kind_t i32 = LWC_FFI_SINT32, v = LWC_FFI_VOID, bad = (lwc_ffi_kind_t)99;
    lwc_ffi_kind_t nostruct = (lwc_ffi_kind_t)(LWC_FFI_STRUCT_FIRST + 100000);
    ck_assert_int_eq(lwc_ffi_sig_new(NULL, LWC_FFI_VOID, 0, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, bad, 0, NULL), LWC_EINVAL);
    ck_assert_ptr_null(sig);
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_VOID, 1, &v), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_VOID, 1, &bad), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_VOID, 1, &nostruct), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_VOID, 1, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_sig_new_variadic(&sig, LWC_FFI_VOID, 0, 1, &i32), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_sig_new_variadic(&sig, LWC_FFI_VOID, 2, 1, &i32), LWC_EINVAL);
    lwc_ffi_kind_t unpromoted[][2] = { { LWC_FFI_POINTER, LWC_FFI_FLOAT },
                                       { LWC_FFI_POINTER, LWC_FFI_SINT8 },
                                       { LWC_FFI_POINTER, LWC_FFI_UINT16 } };
    for (int j = 0; j < 3; j++)
        ck_assert_int_eq(lwc_ffi_sig_new_variadic(&sig, LWC_FFI_VOID, 1, 2, unpromoted[j]),
                         LWC_EINVAL);
    lwc_ffi_kind_t kind;
    ck_assert_int_eq(lwc_ffi_struct_kind(&kind, 0, &i32), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_struct_kind(&kind, 1, &v), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_struct_kind(&kind, 1, &bad), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_struct_kind(NULL, 1, &i32), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_struct_kind(&kind, 65, (lwc_ffi_kind_t[65]){ 0 }), LWC_EINVAL);
    ck_assert_uint_eq(lwc_ffi_kind_size(LWC_FFI_VOID), 0);
    ck_assert_uint_eq(lwc_ffi_kind_size(bad), 0);
    ck_assert_uint_eq(lwc_ffi_kind_size(LWC_FFI_UINT16), 2);

    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_SINT32, 1, &i32), LWC_OK);
    int32_t a = 1, r;
    calls = 0;
    ck_assert_int_eq(lwc_ffi_call_unsafe(NULL, FN(neg32), &r, (void *[]){ &a }), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, NULL, &r, (void *[]){ &a }), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(count), NULL, (void *[]){ &a }), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_call_unsafe(sig, FN(count), &r, NULL), LWC_EINVAL);
    ck_assert_int_eq(calls, 0);
    lwc_ffi_sig_free(sig);
    lwc_ffi_sig_free(NULL);
    ck_assert_uint_eq(lwc_ffi_sig_nargs(NULL), 0);
}
END_TEST

/* From threads of a scheduler, several capabilities at once: one signature
 * shared by all. */
static lwc_ffi_sig_t *shared_sig;
static atomic_int shared_ok;

static void caller(void *arg)
{
    int64_t x = (int64_t)(intptr_t)arg, r;
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(lwc_ffi_call_unsafe(shared_sig, FN(neg64), &r, (void *[]){ &x }), LWC_OK);
        ck_assert_int_eq(r, -x);
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
    atomic_fetch_add(&shared_ok, 1);
}

static void callers(void *arg)
{
    (void)arg;
    lwc_joinable_t *j[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(lwc_spawn_joinable(caller, (void *)(intptr_t)(i + 1), &j[i]), LWC_OK);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(lwc_join(j[i]), LWC_OK);
}

START_TEST(test_from_sconts)
{
    setenv("LWC_CAPS", _i ? "2" : "1", 1);
    lwc_ffi_kind_t k = LWC_FFI_SINT64;
    ck_assert_int_eq(lwc_ffi_sig_new(&shared_sig, LWC_FFI_SINT64, 1, &k), LWC_OK);
    atomic_store(&shared_ok, 0);
    ck_assert_int_eq(lwc_main(callers, NULL), LWC_OK);
    ck_assert_int_eq(atomic_load(&shared_ok), 8);
    lwc_ffi_sig_free(shared_sig);
}
END_TEST

/* ---- closures ----------------------------------------------------------------------- */

/* qsort's comparator is a closure whose handler yields: it runs on the
 * sorting SCont, nested in qsort, while a counter thread keeps running. */
static atomic_int ticks;
static atomic_bool sorted;

static void compare(void *ret, void **args, void *ud)
{
    (void)ud;
    int a = **(const int **)args[0], b = **(const int **)args[1];
    ck_assert_int_eq(lwc_yield(), LWC_OK);
    int32_t r = (a > b) - (a < b);
    memcpy(ret, &r, sizeof r);
}

static void ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&sorted)) {
        atomic_fetch_add(&ticks, 1);
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    }
}

static void sorter(void *arg)
{
    lwc_ffi_sig_t *sig;
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_SINT32, 2,
                                     (lwc_ffi_kind_t[]){ LWC_FFI_POINTER, LWC_FFI_POINTER }),
                     LWC_OK);
    lwc_ffi_closure_t *c;
    void (*code)(void);
    ck_assert_int_eq(lwc_ffi_closure_new(&c, sig, compare, NULL, &code), LWC_OK);
    lwc_joinable_t *j;
    atomic_store(&sorted, false);
    atomic_store(&ticks, 0);
    ck_assert_int_eq(lwc_spawn_joinable(ticker, NULL, &j), LWC_OK);
    int v[100];
    unsigned seed = 7;
    for (int i = 0; i < 100; i++)
        v[i] = (int)(next_rand(&seed) % 1000);
    if (arg) {                                      /* qsort itself a safe call */
        lwc_ffi_sig_t *qs;
        lwc_ffi_kind_t k[] = { LWC_FFI_POINTER, LWC_FFI_UINT64, LWC_FFI_UINT64,
                               LWC_FFI_POINTER };
        ck_assert_int_eq(lwc_ffi_sig_new(&qs, LWC_FFI_VOID, 4, k), LWC_OK);
        void *base = v;
        uint64_t n = 100, size = sizeof v[0];
        ck_assert_int_eq(lwc_ffi_call(qs, FN(qsort), NULL, (void *[]){ &base, &n, &size, &code }),
                         LWC_OK);
        lwc_ffi_sig_free(qs);
    } else {
        qsort(v, 100, sizeof v[0], (int (*)(const void *, const void *))code);
    }
    atomic_store(&sorted, true);
    ck_assert_int_eq(lwc_join(j), LWC_OK);
    for (int i = 1; i < 100; i++)
        ck_assert_int_le(v[i - 1], v[i]);
    if (!strcmp(getenv("LWC_CAPS"), "1"))
        ck_assert_int_gt(atomic_load(&ticks), 100);     /* it ran between comparisons */
    ck_assert_int_eq(lwc_ffi_closure_free(c), LWC_OK);
    lwc_ffi_sig_free(sig);
}

START_TEST(test_qsort_comparator_yields)
{
    setenv("LWC_CAPS", _i % 2 ? "2" : "1", 1);
    ck_assert_int_eq(lwc_main(sorter, (void *)(intptr_t)(_i / 2)), LWC_OK);
}
END_TEST

/* A C library's own worker thread (a plain pthread) calls back: each call
 * is an in-call, a new SCont of the creator's scheduler, which may block on
 * an MVar like any thread; the pthread waits for it. */
#define CALLBACKS 50
static lwc_mvar_t *results;

static void on_event(void *ret, void **args, void *ud)
{
    (void)ud;
    int32_t x = *(int32_t *)args[0];
    ck_assert_ptr_nonnull(lwc_scont_self());
    ck_assert_int_eq(lwc_mvar_put(results, (lwc_word_t)x), LWC_OK);
    int8_t r = (int8_t)-x;                          /* narrower than a register */
    memcpy(ret, &r, 1);
}

struct library { int8_t (*callback)(int32_t); atomic_int bad; };

static void *library_thread(void *arg)
{
    struct library *lib = arg;
    for (int32_t i = 1; i <= CALLBACKS; i++)
        if (lib->callback(i) != (int8_t)-i)
            atomic_fetch_add(&lib->bad, 1);
    return NULL;
}

static void host(void *arg)
{
    (void)arg;
    lwc_ffi_sig_t *sig;
    lwc_ffi_kind_t k = LWC_FFI_SINT32;
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_SINT8, 1, &k), LWC_OK);
    lwc_ffi_closure_t *c;
    void (*code)(void);
    ck_assert_int_eq(lwc_ffi_closure_new(&c, sig, on_event, NULL, &code), LWC_OK);
    results = lwc_mvar_new();
    lwc_pin(results);                               /* the pthread reaches it through us */
    struct library lib = { (int8_t (*)(int32_t))code, 0 };
    pthread_t pt;
    ck_assert_int_eq(pthread_create(&pt, NULL, library_thread, &lib), 0);
    long sum = 0;
    for (int i = 0; i < CALLBACKS; i++) {
        lwc_word_t v;
        ck_assert_int_eq(lwc_mvar_take(results, &v), LWC_OK);
        sum += (long)v;
    }
    /* Joined from a yielding loop: a blocking pthread_join would stop this
     * capability, which the last in-call may still need. */
    while (pthread_tryjoin_np(pt, NULL) != 0)
        ck_assert_int_eq(lwc_yield(), LWC_OK);
    ck_assert_int_eq(sum, CALLBACKS * (CALLBACKS + 1) / 2);
    ck_assert_int_eq(atomic_load(&lib.bad), 0);
    ck_assert_int_eq(lwc_ffi_closure_free(c), LWC_OK);
    lwc_unpin(results);
    lwc_mvar_free(results);
    lwc_ffi_sig_free(sig);
}

START_TEST(test_callback_from_a_foreign_thread)
{
    setenv("LWC_CAPS", _i ? "2" : "1", 1);
    ck_assert_int_eq(lwc_main(host, NULL), LWC_OK);
}
END_TEST

/* A closure in use cannot be freed: its own handler tries. */
static lwc_ffi_closure_t *self_closure;

static void free_myself(void *ret, void **args, void *ud)
{
    (void)ret; (void)args; (void)ud;
    ck_assert_int_eq(lwc_ffi_closure_free(self_closure), LWC_EBUSY);
}

START_TEST(test_closure_busy_and_bad_input)
{
    lwc_ffi_sig_t *sig;
    ck_assert_int_eq(lwc_ffi_sig_new(&sig, LWC_FFI_VOID, 0, NULL), LWC_OK);
    void (*code)(void);
    lwc_ffi_closure_t *c;
    ck_assert_int_eq(lwc_ffi_closure_new(NULL, sig, free_myself, NULL, &code), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_closure_new(&c, NULL, free_myself, NULL, &code), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_closure_new(&c, sig, NULL, NULL, &code), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_closure_new(&c, sig, free_myself, NULL, NULL), LWC_EINVAL);
    ck_assert_int_eq(lwc_ffi_closure_new(&self_closure, sig, free_myself, NULL, &code), LWC_OK);
    /* Called from this plain thread with no runtime: the handler runs as an
     * in-call, which needs lwc_init; it runs on an idle capability. */
    ck_assert_int_eq(lwc_init(&(lwc_config_t){ .ncaps = 1 }), LWC_OK);
    code();
    lwc_shutdown();
    ck_assert_int_eq(lwc_ffi_closure_free(self_closure), LWC_OK);
    ck_assert_int_eq(lwc_ffi_closure_free(NULL), LWC_OK);
    lwc_ffi_sig_free(sig);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ffi");
    TCase *tc = tcase_create("ffi");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_scalar_kind);
    tcase_add_test(tc, test_mixed_arguments_and_void);
    tcase_add_test(tc, test_structs_by_value);
    tcase_add_test(tc, test_variadic);
    tcase_add_test(tc, test_errno_is_the_callees);
    tcase_add_test(tc, test_bad_descriptions);
    tcase_add_loop_test(tc, test_from_sconts, 0, 2);
    tcase_add_loop_test(tc, test_qsort_comparator_yields, 0, 4);
    tcase_add_loop_test(tc, test_safe_call_blocks_only_its_thread, 0, 2);
    tcase_add_loop_test(tc, test_callback_from_a_foreign_thread, 0, 2);
    tcase_add_test(tc, test_closure_busy_and_bad_input);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
