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
 * Returns the exit status: 0 when every request was answered with a 2xx
 * that says allowed or denied, none failed, and exactly o->exact_limit
 * were allowed; 1 otherwise, with the reasons printed.
 */
int lt_exact_run(const lt_options_t *o);

#endif
