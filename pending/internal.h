/* pending/ private helpers. */
#ifndef SVC_PENDING_INTERNAL_H
#define SVC_PENDING_INTERNAL_H

#include "pending/pending.h"

/* (the path helpers are public: see pending.h) */

#endif
