/*
 * exact.h — exactness mode: several client processes, spread over several
 * ratekitd instances, hammer one key of one rule; the sum of the allowed
 * answers must equal the rule's limit.
 */
#ifndef LT_EXACT_H
#define LT_EXACT_H

#include "options.h"

/*
 * Runs o->procs processes, each sending its share of o->requests over
 * connections spread round-robin across o->urls, and prints the verdict.
 * Returns the exit status: 0 when exactly o->exact_limit requests were
 * allowed, every request was answered and none failed; 1 otherwise.
 */
int lt_exact_run(const lt_options_t *o);

#endif
