/*	$pktkit: i8255xreg.h $	*/

/*
 * Intel i82557/8/9 ("8255x") Fast Ethernet controller: registers and
 * shared-memory structures.
 *
 * References: "Intel 8255x 10/100 Mbps Ethernet Controller Family Open
 * Source Software Developer Manual" (the "SDM"), section numbers below.
 */

#ifndef _PKTKIT_I8255XREG_H_
#define _PKTKIT_I8255XREG_H_

/*
 * Control/Status Registers (SDM 6.3), at the start of the memory BAR.
 */
#define FXP_CSR_SCB_RUSCUS	0x00	/* 1: CU and RU status */
#define FXP_CSR_SCB_STATACK	0x01	/* 1: interrupt status / ack */
#define FXP_CSR_SCB_COMMAND	0x02	/* 1: CU and RU commands */
#define FXP_CSR_SCB_INTRCNTL	0x03	/* 1: interrupt mask */
#define FXP_CSR_SCB_GENERAL	0x04	/* 4: general pointer */
#define FXP_CSR_PORT		0x08	/* 4: PORT interface */
#define FXP_CSR_EECONTROL	0x0e	/* 2: serial EEPROM control */
#define FXP_CSR_MDICONTROL	0x10	/* 4: MDI control */

/* SCB status byte (SDM 6.3.2.1). */
#define FXP_SCB_CUS_MASK	0xc0
#define FXP_SCB_CUS_IDLE	0x00
#define FXP_SCB_CUS_SUSPENDED	0x40
#define FXP_SCB_CUS_ACTIVE	0x80
#define FXP_SCB_RUS_MASK	0x3c
#define FXP_SCB_RUS_IDLE	0x00
#define FXP_SCB_RUS_SUSPENDED	0x04
#define FXP_SCB_RUS_NORES	0x08
#define FXP_SCB_RUS_READY	0x10

/* SCB STAT/ACK byte: write a 1 to acknowledge (SDM 6.3.2.1). */
#define FXP_SCB_STATACK_CXTNO	0x80	/* command with I bit done */
#define FXP_SCB_STATACK_FR	0x40	/* frame received */
#define FXP_SCB_STATACK_CNA	0x20	/* CU left the active state */
#define FXP_SCB_STATACK_RNR	0x10	/* RU left the ready state */
#define FXP_SCB_STATACK_MDI	0x08	/* MDI read or write done */
#define FXP_SCB_STATACK_SWI	0x04	/* software interrupt */
#define FXP_SCB_STATACK_FCP	0x01	/* flow control pause */
#define FXP_SCB_STATACK_ALL	0xfd

/* SCB command byte (SDM 6.3.2.2). */
#define FXP_SCB_COMMAND_CU_NOP		0x00
#define FXP_SCB_COMMAND_CU_START	0x10
#define FXP_SCB_COMMAND_CU_RESUME	0x20
#define FXP_SCB_COMMAND_CU_BASE		0x60
#define FXP_SCB_COMMAND_RU_NOP		0x00
#define FXP_SCB_COMMAND_RU_START	0x01
#define FXP_SCB_COMMAND_RU_RESUME	0x02
#define FXP_SCB_COMMAND_RU_ABORT	0x04
#define FXP_SCB_COMMAND_RU_BASE		0x06

/* SCB interrupt control byte (SDM 6.3.2.3). */
#define FXP_SCB_INTR_DISABLE	0x01	/* M: mask every interrupt */
#define FXP_SCB_INTR_ENABLE	0x00

/* PORT commands (SDM 6.3.3). */
#define FXP_PORT_SOFTWARE_RESET	0x00000000
#define FXP_PORT_SELFTEST	0x00000001
#define FXP_PORT_SELECTIVE_RESET 0x00000002

/* Serial EEPROM control (SDM 6.3.4): a Microwire interface. */
#define FXP_EECONTROL_EESK	0x01	/* clock */
#define FXP_EECONTROL_EECS	0x02	/* chip select */
#define FXP_EECONTROL_EEDI	0x04	/* data to the EEPROM */
#define FXP_EECONTROL_EEDO	0x08	/* data from the EEPROM */
#define FXP_EEPROM_OPC_READ	0x6	/* start bit + read opcode 10 */
#define FXP_EEPROM_MAXADDRBITS	8

/* MDI control (SDM 6.3.5). */
#define FXP_MDI_DATA_MASK	0x0000ffff
#define FXP_MDI_REG_SHIFT	16
#define FXP_MDI_PHY_SHIFT	21
#define FXP_MDI_WRITE		(1U << 26)
#define FXP_MDI_READ		(2U << 26)
#define FXP_MDI_READY		(1U << 28)

/*
 * Command blocks (SDM 6.4): every action command starts with a status
 * word, a command word and the link to the next block.
 */
#define FXP_CB_STATUS_C		0x8000	/* completed */
#define FXP_CB_STATUS_OK	0x2000	/* completed without error */
#define FXP_CB_COMMAND_EL	0x8000	/* end of list: CU goes idle */
#define FXP_CB_COMMAND_S	0x4000	/* suspend after this block */
#define FXP_CB_COMMAND_I	0x2000	/* interrupt (CX) when done */
#define FXP_CB_COMMAND_SF	0x0008	/* flexible transmit mode */
#define FXP_CB_COMMAND_NOP	0x0
#define FXP_CB_COMMAND_IAS	0x1	/* individual address setup */
#define FXP_CB_COMMAND_CONFIG	0x2
#define FXP_CB_COMMAND_MCAS	0x3	/* multicast address setup */
#define FXP_CB_COMMAND_XMIT	0x4

struct fxp_cb_hdr {
	uint16_t	cb_status;
	uint16_t	cb_command;
	uint32_t	cb_link;
} __packed;

/* Transmit, simplified mode: the frame follows the block (SDM 6.4.2.5). */
#define FXP_TX_DATA_MAX		1536
#define FXP_TBD_ARRAY_NONE	0xffffffff
#define FXP_TX_EOF		0x8000	/* byte count: whole frame here */
struct fxp_cb_tx {
	struct fxp_cb_hdr tx_hdr;
	uint32_t	tx_tbd_array_addr;
	uint16_t	tx_byte_count;
	uint8_t		tx_threshold;	/* in units of 8 bytes */
	uint8_t		tx_tbd_number;
	uint8_t		tx_data[FXP_TX_DATA_MAX];
} __packed;

/* Configure (SDM 6.4.2.3): 22 bytes on the 82558 and later. */
#define FXP_CONFIG_LEN		22
struct fxp_cb_config {
	struct fxp_cb_hdr cfg_hdr;
	uint8_t		cfg_bytes[FXP_CONFIG_LEN];
} __packed;
#define FXP_CONFIG15_PROMISC	0x01	/* byte 15: accept every frame */
#define FXP_CONFIG15_NOBCAST	0x02	/* byte 15: broadcast disable */
#define FXP_CONFIG21_MCALL	0x08	/* byte 21: accept all multicast */

/* Individual address setup (SDM 6.4.2.2). */
struct fxp_cb_ias {
	struct fxp_cb_hdr ias_hdr;
	uint8_t		ias_addr[ETHER_ADDR_LEN];
} __packed;

/*
 * Multicast setup (SDM 6.4.2.4): a byte count (6 per address) and the
 * addresses; the chip hashes them into its 64-bit filter itself.
 */
#define FXP_NMCAST		64
struct fxp_cb_mcs {
	struct fxp_cb_hdr mcs_hdr;
	uint16_t	mcs_count;
	uint8_t		mcs_addr[FXP_NMCAST][ETHER_ADDR_LEN];
} __packed;

/*
 * Receive frame descriptor, simplified mode: the frame is stored right
 * after the descriptor (SDM 6.5.1).
 */
#define FXP_RFD_STATUS_C	0x8000
#define FXP_RFD_STATUS_OK	0x2000
#define FXP_RFD_COMMAND_EL	0x8000
#define FXP_RFD_COMMAND_S	0x4000
#define FXP_RFD_COUNT_EOF	0x8000
#define FXP_RFD_COUNT_F		0x4000
#define FXP_RFD_COUNT_MASK	0x3fff
#define FXP_RFD_DATA_MAX	1536
struct fxp_rfd {
	uint16_t	rfd_status;
	uint16_t	rfd_command;
	uint32_t	rfd_link;
	uint32_t	rfd_rbd_addr;	/* 0xffffffff: no RBD (simplified) */
	uint16_t	rfd_count;	/* actual count, EOF, F */
	uint16_t	rfd_size;	/* room after the descriptor */
	uint8_t		rfd_data[FXP_RFD_DATA_MAX];
} __packed;

#endif /* _PKTKIT_I8255XREG_H_ */
