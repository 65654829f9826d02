/*
 * delay.h — answering later without holding a thread: the connection is
 * suspended, and a timer thread queues its response and resumes it when
 * the delay is over (leaky-bucket shaping on /v1/auth).
 */
#ifndef RK_DELAY_H
#define RK_DELAY_H

#include "http.h"

#define RK_DELAY_MAX_PENDING 10000 /* past this, answers go out at once */

rk_status_t rk_delay_start(void);
/* Answers every pending response at once and stops the timer thread. */
void rk_delay_stop(void);

/*
 * Queues resp (owned from now on) with status after delay_ms; answers at
 * once when the delay is 0 or the timer is full.
 */
enum MHD_Result rk_reply_later(rk_request_t *req, unsigned status, struct MHD_Response *resp,
                               int64_t delay_ms);

#endif
