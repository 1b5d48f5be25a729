/* Pins and traced memory (lwc/detect.h): counts, the tables under churn
 * against a model, bad input, and two OS threads at once. */
#include "harness.h"

#include <stdint.h>
#include <string.h>

START_TEST(test_pins_count)
{
    static int a, b;
    ck_assert_uint_eq(lwc_pin_count(&a), 0);
    lwc_pin(&a);
    lwc_pin(&a);
    lwc_pin(&b);
    ck_assert_uint_eq(lwc_pin_count(&a), 2);
    ck_assert_uint_eq(lwc_pin_count(&b), 1);
    lwc_unpin(&a);
    ck_assert_uint_eq(lwc_pin_count(&a), 1);
    lwc_unpin(&a);
    lwc_unpin(&b);
    ck_assert_uint_eq(lwc_pin_count(&a), 0);
    ck_assert_uint_eq(lwc_pin_count(&b), 0);
    /* Bad input: ignored, and nothing else changes. */
    lwc_pin(&b);
    lwc_unpin(&a);                  /* not pinned: a warning */
    lwc_pin(NULL);
    lwc_unpin(NULL);
    ck_assert_uint_eq(lwc_pin_count(NULL), 0);
    ck_assert_uint_eq(lwc_pin_count(&a), 0);
    ck_assert_uint_eq(lwc_pin_count(&b), 1);
    lwc_unpin(&b);
}
END_TEST

/* Random pins and unpins over a few thousand addresses, checked against a
 * plain array of counts: growth and removal keep every other entry findable. */
#define NOBJ 4096
static unsigned model[NOBJ];
static char objs[NOBJ];

START_TEST(test_pins_churn)
{
    unsigned seed = 101 + (unsigned)_i;
    memset(model, 0, sizeof model);
    unsigned ops = scaled(200000);
    for (unsigned k = 0; k < ops; k++) {
        unsigned i = next_rand(&seed) % (k < ops / 2 ? NOBJ : NOBJ / 8);
        if (model[i] && next_rand(&seed) % 2) {
            lwc_unpin(&objs[i]);
            model[i]--;
        } else {
            lwc_pin(&objs[i]);
            model[i]++;
        }
    }
    for (unsigned i = 0; i < NOBJ; i++) {
        ck_assert_uint_eq(lwc_pin_count(&objs[i]), model[i]);
        while (model[i]--)
            lwc_unpin(&objs[i]);
        ck_assert_uint_eq(lwc_pin_count(&objs[i]), 0);
    }
}
END_TEST

START_TEST(test_alloc)
{
    unsigned char *p = lwc_alloc(1000);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % _Alignof(max_align_t), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(p[i], 0);
    memset(p, 0xab, 1000);
    void *z = lwc_alloc(0);
    ck_assert_ptr_nonnull(z);
    ck_assert_ptr_null(lwc_alloc(SIZE_MAX));
    lwc_free(p);
    lwc_free(z);
    lwc_free(NULL);
}
END_TEST

START_TEST(test_free_bad_pointers)
{
    void *p = lwc_alloc(16);
    void *m = malloc(16);
    int on_stack = 0;
    lwc_free(m);                    /* not ours: a warning, m untouched */
    lwc_free(&on_stack);
    lwc_free((char *)p + 8);        /* inside a block is not the block */
    void *big = lwc_alloc(4000);
    lwc_free((char *)big + 16);
    lwc_free(big);
    lwc_free(big);
    lwc_free(p);
    lwc_free(p);                    /* twice: a warning */
    free(m);
}
END_TEST

/* Blocks of every size, small ones from slabs and big ones from malloc (Note
 * [Slabs] in substrate/traced.c), made and freed in a random order: each is
 * zeroed when made and keeps what was written into all of it, so no two
 * overlap. */
START_TEST(test_alloc_churn)
{
    unsigned seed = 7 + (unsigned)_i;
    enum { N = 512, MAX = 320 };
    unsigned char *live[N] = { 0 }, want[MAX];
    static const unsigned char zero[MAX];
    size_t size[N];
    unsigned ops = scaled(100000);
    for (unsigned k = 0; k < ops; k++) {
        unsigned i = next_rand(&seed) % N;
        if (live[i]) {
            memset(want, (unsigned char)i, size[i]);
            ck_assert_int_eq(memcmp(live[i], want, size[i]), 0);
            lwc_free(live[i]);
            live[i] = NULL;
        } else {
            size[i] = 1 + next_rand(&seed) % MAX;
            live[i] = lwc_alloc(size[i]);
            ck_assert_ptr_nonnull(live[i]);
            ck_assert_uint_eq((uintptr_t)live[i] % 16, 0);
            ck_assert_int_eq(memcmp(live[i], zero, size[i]), 0);
            memset(live[i], (unsigned char)i, size[i]);
        }
    }
    for (unsigned i = 0; i < N; i++)
        lwc_free(live[i]);
}
END_TEST

/* Two OS threads pin, unpin, allocate and free at once, on shared addresses. */
static void *hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (unsigned k = 0; k < scaled(50000); k++) {
        char *o = &objs[next_rand(&seed) % 64];
        lwc_pin(o);
        void *b = lwc_alloc(8);
        lwc_unpin(o);
        lwc_free(b);
    }
    return NULL;
}

START_TEST(test_two_threads)
{
    pthread_t t[2];
    for (uintptr_t i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, (void *)(i + 1)), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 64; i++)
        ck_assert_uint_eq(lwc_pin_count(&objs[i]), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("traced");
    TCase *tc = tcase_create("traced");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_pins_count);
    tcase_add_loop_test(tc, test_pins_churn, 0, LIGHT_RUN() ? 1 : 8);
    tcase_add_test(tc, test_alloc);
    tcase_add_test(tc, test_free_bad_pointers);
    tcase_add_loop_test(tc, test_alloc_churn, 0, LIGHT_RUN() ? 1 : 8);
    tcase_add_test(tc, test_two_threads);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
