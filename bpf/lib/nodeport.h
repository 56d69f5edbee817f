/* SPDX-License-Identifier: Apache-2.0 */
/* North-south load balancing, written once over ctx_t (see ctx.h) for tc and XDP:
 * NodePort / LoadBalancer / externalIPs → conntrack → backend selection → DNAT (+ SNAT for a
 * remote backend) → forward; replies reverse-translated. Each stage returns NP_CONTINUE or a
 * final verdict, so the entry points read as a list of steps. */
#pragma once

/* Split along the pipeline (Katran's layout): parse → event → rewrite/forward → DSR → stages;
 * the ICMP stage is icmp.h, the entry programs nodeport_entry.h. */
#include "nodeport_stages.h"
