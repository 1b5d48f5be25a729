/* A model of the ws deque (schedulers/ws/deque.h, Note [Deque orderings]):
 * one owner that pushes and takes at the bottom in every order spin can choose,
 * two thieves that steal at the top.  Each statement below is one load, one
 * store or the compare-and-swap on `top`, as in the C code, so spin explores
 * every sequentially consistent interleaving of them.  Checked: no element is
 * taken twice, and once everyone stops, every element pushed and not taken is
 * still in the deque (nothing lost). */

#define N      4            /* elements the owner pushes: 1..N */
#define SIZE   8            /* > N: the array never grows in the model */
#define STEALS 2            /* attempts per thief */

int  top = 0, bottom = 0;
byte buf[SIZE];
byte taken[N + 1];          /* times each element was taken */
byte pushed = 0;

inline took(x) {
    taken[x]++;
    assert(taken[x] == 1)
}

inline push(x) {
    buf[bottom % SIZE] = x;             /* the element, then (release) bottom */
    bottom = bottom + 1
}

inline take() {
    b = bottom - 1;
    bottom = b;                         /* claim slot b, then (seq_cst) read top */
    t = top;
    if
    :: t <= b ->
        x = buf[b % SIZE];
        if
        :: t == b ->                    /* the last one: race the thieves */
            atomic { if :: top == t -> top = t + 1; won = 1 :: else -> won = 0 fi }
            bottom = b + 1;
            if :: won -> took(x) :: else -> skip fi
        :: else -> took(x)
        fi
    :: else -> bottom = b + 1
    fi
}

proctype owner() {
    int b, t; byte x; bit won;
    do
    :: pushed < N -> pushed++; push(pushed)
    :: take()
    :: break
    od
}

proctype thief() {
    int b, t; byte x, i;
    for (i : 1 .. STEALS) {
        t = top;                        /* top, then (seq_cst) bottom */
        b = bottom;
        if
        :: t < b ->
            x = buf[t % SIZE];
            atomic { if :: top == t -> top = t + 1; took(x) :: else -> skip fi }
        :: else -> skip
        fi
    }
}

init {
    int b, t; byte x, i; bit won;
    atomic { run owner(); run thief(); run thief() }
    _nr_pr == 1;                        /* everyone has stopped */
    do                                  /* the owner empties what is left */
    :: top < bottom -> take()
    :: else -> break
    od;
    for (i : 1 .. pushed) {
        assert(taken[i] == 1)
    }
}
