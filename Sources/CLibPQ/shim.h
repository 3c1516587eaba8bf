#ifndef TOLLGATE_CLIBPQ_SHIM_H
#define TOLLGATE_CLIBPQ_SHIM_H
#include <postgresql/libpq-fe.h>
#endif
