/* Blocks handed between threads: 4 producers malloc (and sometimes realloc) blocks and pass them
 * through queues to 4 consumers, which sometimes realloc and always free them. Every free and
 * realloc happens on another thread than the allocation, so a trace whose cross-thread time
 * order is wrong shows frees of unknown blocks and blocks that never die. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#define PAIRS 4
#define ITEMS 200000
#define QN 1024
struct q { pthread_mutex_t m; pthread_cond_t c; void *items[QN]; int head, tail, count; };
static struct q queues[PAIRS];
static void put(struct q *q, void *p) { pthread_mutex_lock(&q->m); while (q->count == QN) pthread_cond_wait(&q->c, &q->m); q->items[q->tail] = p; q->tail = (q->tail + 1) % QN; q->count++; pthread_cond_broadcast(&q->c); pthread_mutex_unlock(&q->m); }
static void *get(struct q *q) { pthread_mutex_lock(&q->m); while (q->count == 0) pthread_cond_wait(&q->c, &q->m); void *p = q->items[q->head]; q->head = (q->head + 1) % QN; q->count--; pthread_cond_broadcast(&q->c); pthread_mutex_unlock(&q->m); return p; }
static void *producer(void *a) { struct q *q = a; for (int i = 0; i < ITEMS; i++) { void *p = malloc(16 + i % 300); if (i % 3 == 0) p = realloc(p, 40 + i % 500); put(q, p); } put(q, NULL); return NULL; }
static void *consumer(void *a) { struct q *q = a; for (;;) { void *p = get(q); if (!p) break; if (((size_t)p >> 4) % 5 == 0) p = realloc(p, 100); free(p); } return NULL; }
int main(void) {
    pthread_t t[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) { pthread_mutex_init(&queues[i].m, NULL); pthread_cond_init(&queues[i].c, NULL); pthread_create(&t[2*i], NULL, producer, &queues[i]); pthread_create(&t[2*i+1], NULL, consumer, &queues[i]); }
    for (int i = 0; i < 2 * PAIRS; i++) pthread_join(t[i], NULL);
    puts("done");
    return 0;
}
